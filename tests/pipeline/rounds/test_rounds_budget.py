"""The token-budget threshold: hand-checked digits, exactness against a full sort, and the Beam
transform giving the same answer as the in-memory search."""
import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.rounds import budget
from pipeline.rounds.budget import (
    TokenBudgetThreshold,
    digit,
    initial_state,
    ranking_key,
    score_bits,
    select_digit,
    threshold_in_memory,
)


def test_keys_sort_like_scores_and_break_ties_by_id():
    assert score_bits(0.0) == 0 and score_bits(1.0) == 0x3F800000 and score_bits(1.7) == score_bits(1.0)
    assert score_bits(0.25) < score_bits(0.5) < score_bits(0.75)
    assert ranking_key(0.5, "a") >> 32 == ranking_key(0.5, "b") >> 32 and ranking_key(0.5, "a") != ranking_key(0.5, "b")
    assert ranking_key(0.5000001, "zzz") > ranking_key(0.5, "a")
    key = 0x0123_4567_89AB_CDEF
    assert [digit(key, level) for level in range(4)] == [0x0123, 0x4567, 0x89AB, 0xCDEF]


def test_select_digit_by_hand():
    # Tokens per top digit: 7 -> 40, 5 -> 30, 2 -> 50. Budget 60: digit 7 gives 40 (< 60),
    # digit 5 brings it to 70 (>= 60): choose 5, 40 tokens lie above it, 20 still needed inside it.
    state = select_digit(initial_state(60), {2: 50, 5: 30, 7: 40})
    assert (state["prefix"], state["tokens_above"], state["need"], state["total_tokens"]) == (5, 40, 20, 120)
    # A budget above the pool selects everything.
    everything = select_digit(initial_state(500), {2: 50, 5: 30})
    assert everything["all_selected"] and everything["tokens_above"] == 80


def _brute_force(pairs, budget_tokens):
    """Sort all keys descending and take pages until the budget is reached."""
    taken = 0
    for key, tokens in sorted(pairs, reverse=True):
        taken += tokens
        if taken >= budget_tokens:
            return key, taken
    return 0, taken


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_selects_the_budget_within_one_page(seed):
    rng = random.Random(seed)
    # 5,000 pages; scores with heavy ties (rounded to 2 decimals, many exactly 1.0) as fastText gives.
    pairs = []
    for i in range(5000):
        score = 1.0 if rng.random() < 0.2 else round(rng.betavariate(0.5, 2), 2)
        pairs.append((ranking_key(score, f"page-{i}"), rng.randint(1, 3000)))
    total = sum(t for _, t in pairs)
    for fraction in (0.001, 0.05, 0.3, 0.999):
        target = max(1, int(total * fraction))
        result = threshold_in_memory(pairs, target)
        key, taken = _brute_force(pairs, target)
        assert result["threshold_key"] == key and result["selected_tokens"] == taken
        selected = sum(t for k, t in pairs if k >= result["threshold_key"])
        largest = max(t for _, t in pairs)
        # Tolerance: at least the budget, less than the budget plus one page.
        assert target <= selected < target + largest and selected == result["selected_tokens"]
    over = threshold_in_memory(pairs, total + 1)
    assert over["all_selected"] and over["threshold_key"] == 0 and over["selected_tokens"] == total


def test_beam_transform_matches_in_memory_search():
    rng = random.Random(7)
    pairs = [(ranking_key(round(rng.random(), 3), str(i)), rng.randint(1, 50)) for i in range(2000)]
    expected = threshold_in_memory(pairs, 10_000)
    with beam.Pipeline("FnApiRunner") as p:
        result = p | beam.Create(pairs) | TokenBudgetThreshold(10_000)
        assert_that(result, equal_to([expected]))
    assert budget.score_from_bits(expected["threshold_key"] >> 32) == pytest.approx(expected["threshold_score"])
