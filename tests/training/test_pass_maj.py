"""Pass@K and Maj@K against hand computations on constructed sample sets."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest

from training.answers import answers_equal, normalize_answer
from training.evaluate import score_samples
from training.metrics import cluster_answers, maj_at_k, majority_answer, pass_at_k, vote_credit

# ---------------------------------------------------------------- Pass@K


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (200, 1, 100, 0.5),  # 1 - C(199,100)/C(200,100) = 1 - 100/200
        (4, 1, 4, 1.0),  # K = n with one right
        (4, 0, 4, 0.0),  # K = n, all wrong
        (64, 0, 1, 0.0),  # all wrong
        (64, 64, 1, 1.0),  # all right
        (64, 64, 64, 1.0),
        (8, 5, 4, 1.0),  # n - c < K: every subset holds a right one
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) overflows a float; the product form must not.
    value = pass_at_k(1000, 10, 500)
    exact = 1 - comb(990, 500) / comb(1000, 500)
    assert value == pytest.approx(exact, rel=1e-12)
    assert 0.99 < value < 1.0


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_invalid_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# ---------------------------------------------------------------- Maj@K


def test_vote_credit_splits_ties():
    counts = np.array([[2, 2, 0], [3, 1, 0], [1, 1, 1], [0, 0, 0], [0, 2, 1]])
    credit = vote_credit(counts, np.array([True, False, False]))
    assert credit.tolist() == pytest.approx([0.5, 1.0, 1 / 3, 0.0, 0.0])


@pytest.mark.parametrize(
    "votes, k, expected",
    [
        ([0, 0, 1], 3, 1.0),  # K = n, right answer wins
        ([1, 1, 0], 3, 0.0),  # K = n, wrong answer wins
        ([0, 0, 1, 1], 4, 0.5),  # K = n, 2-2 tie between right and wrong
        ([0, 1, 2], 3, 1 / 3),  # three-way tie
        ([1, 1, 2, 2, 0], 5, 0.0),  # the right answer is a minority
        ([None, None, None], 3, 0.0),  # no answers at all
        ([None, None, None], 1, 0.0),
        ([0] * 6, 3, 1.0),  # all right
        ([1, 2, 1, 3], 2, 0.0),  # all wrong
        ([0, 1, 1, 2], 1, 0.25),  # K = 1 is the mean single-sample accuracy
        ([0, None], 1, 0.5),
        ([0, 0, 1, None], 2, 4 / 6),  # pairs: 00->1, 01 x2->.5, 0N x2->1, 1N->0
        ([0, 0, 0, 1, 1], 3, 0.7),  # 7 of the 10 triples hold >= 2 zeros
    ],
)
def test_maj_at_k_hand_values(votes, k, expected):
    assert maj_at_k(votes, {0}, k) == pytest.approx(expected, abs=1e-12)


def test_maj_at_k_random_subsets_agree_with_exact_enumeration():
    rng = np.random.default_rng(3)
    votes = [int(v) if v < 4 else None for v in rng.integers(0, 5, size=18)]
    exact = maj_at_k(votes, {0}, 9, max_exact_subsets=10**6)  # C(18, 9) = 48620 subsets
    sampled = maj_at_k(votes, {0}, 9, max_exact_subsets=100, num_subsets=20000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.01)
    assert sampled == maj_at_k(votes, {0}, 9, max_exact_subsets=100, num_subsets=20000, seed=1)  # seeded


def test_maj_at_k_with_several_correct_clusters():
    # Clusters 0 and 1 are both right (e.g. the checker could not merge them): a 1-1 tie is right.
    assert maj_at_k([0, 1], {0, 1}, 2) == 1.0
    assert maj_at_k([0, 2], {0, 1}, 2) == 0.5


def test_maj_at_k_rejects_bad_k():
    with pytest.raises(ValueError):
        maj_at_k([0, 1], {0}, 3)


# ---------------------------------------------------------------- clustering and scoring


def test_cluster_answers_groups_equivalent_forms():
    answers = ["1/2", "0.5", "\\frac{1}{2}", "2", None, "2.0", "\\dfrac12", "x+1"]
    ids = cluster_answers(answers, answers_equal, key=normalize_answer)
    assert ids == [0, 0, 0, 1, None, 1, 0, 2]


def test_majority_answer_breaks_ties_by_first_sample():
    assert majority_answer(["a", "b", "b", "a"], [0, 1, 1, 0]) == "a"
    assert majority_answer(["a", "b", "b"], [0, 1, 1]) == "b"
    assert majority_answer([None, None], [None, None]) is None


def test_score_samples_by_hand():
    answers = ["18", "18.0", "17", "\\frac{36}{2}", None, "17"]
    scored = score_samples(answers, "18", ks=[1, 2, 6])
    assert scored["correct"] == 3 and scored["n"] == 6
    assert scored["votes"] == [0, 0, 1, 0, None, 1]
    assert scored["pass@1"] == pytest.approx(0.5)
    assert scored["pass@2"] == pytest.approx(1 - comb(3, 2) / comb(6, 2))
    assert scored["maj@6"] == 1.0  # 3 votes for 18 against 2 for 17
    assert scored["maj@1"] == pytest.approx(0.5)
    assert scored["majority"] == "18"


def test_score_samples_wrong_majority_with_equivalent_wrong_forms():
    # Wrong answers written differently still vote together and beat the right one.
    answers = ["0.25", "\\frac{1}{4}", "1/4", "\\frac{1}{3}"]
    scored = score_samples(answers, "\\frac{1}{3}", ks=[4])
    assert scored["votes"] == [1, 1, 1, 0]
    assert scored["maj@4"] == 0.0 and scored["pass@4"] == 1.0
