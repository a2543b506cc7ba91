"""Pass@K and Maj@K from n >= K sampled answers per problem, as pure functions.

**Pass@K** (any of K samples right) uses the unbiased estimator of Chen et al. (2021), the
probability that a random K-subset of the n samples holds at least one of the c correct ones:
``1 - C(n-c, K) / C(n, K)``, computed in the numerically stable product form
``1 - prod_{i=n-c+1}^{n} (1 - K / i)`` (no huge binomials). The paper reports Pass@K and Maj@K
for K = 1..64 (its figure 7); it does not say which estimator it used.

**Maj@K** (majority vote over K samples right) is estimated the same way: the expected
correctness of the vote over a uniformly random K-subset of the n samples.

- Votes are cast for *clusters of equivalent answers* (``cluster_answers``, with
  ``training.answers.answers_equal``), not for identical strings: ``\\frac12`` and ``0.5``
  vote together. A sample with no extracted answer casts no vote (but still fills a slot in
  the subset, as it would in a real K-sample run).
- Ties: when several clusters share the top count, the vote counts as right in proportion
  to the correct clusters among them (e.g. a 2-2 tie between a right and a wrong answer scores
  0.5). This is the expectation of breaking the tie uniformly at random; it does not depend on
  sample order, unlike "first seen wins". A subset with no answers at all scores 0.
- K-subsets: all ``C(n, K)`` of them when there are at most ``max_exact_subsets``; else
  ``num_subsets`` random ones drawn with a fixed seed (standard error per problem at most
  ``0.5 / sqrt(num_subsets)``, far less after averaging over problems). ``K = n`` and ``K = 1``
  are always exact.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@K from ``n`` samples of which ``c`` are correct: ``1 - C(n-c, k) / C(n, k)``.

    Requires ``0 <= c <= n`` and ``1 <= k <= n``. Exactly 1.0 when ``n - c < k`` (every
    K-subset holds a correct sample), exactly 0.0 when ``c == 0``.
    """
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def vote_credit(cluster_counts: np.ndarray, correct_mask: np.ndarray) -> np.ndarray:
    """Credit of the majority vote for each row of ``cluster_counts`` (subsets x clusters).

    The top clusters (ties included) share the vote; credit = (#correct top clusters) /
    (#top clusters); 0 for a row with no votes. ``correct_mask`` marks the correct clusters.
    """
    counts = np.asarray(cluster_counts)
    if counts.ndim == 1:
        counts = counts[None, :]
    top = counts.max(axis=1, keepdims=True)
    tied = (counts == top) & (top > 0)
    n_tied = tied.sum(axis=1)
    n_right = (tied & np.asarray(correct_mask, dtype=bool)[None, :]).sum(axis=1)
    return np.where(n_tied > 0, n_right / np.maximum(n_tied, 1), 0.0)


def _subset_indices(n: int, k: int, max_exact_subsets: int, num_subsets: int, seed: int) -> np.ndarray:
    """K-subsets of ``range(n)`` as rows: all of them when few enough, else random ones (fixed seed)."""
    if math.comb(n, k) <= max_exact_subsets:
        return np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((num_subsets, n)), axis=1)[:, :k]


def maj_at_k(votes: Sequence[int | None], correct_clusters: Collection[int], k: int,
             max_exact_subsets: int = 5000, num_subsets: int = 2000, seed: int = 0) -> float:
    """Expected correctness of a majority vote over a random K-subset of the n samples.

    ``votes[i]`` is the answer cluster of sample i (None: no answer); ``correct_clusters`` are
    the clusters equivalent to the gold answer. Requires ``1 <= k <= len(votes)``. Ties are
    split as described in the module docstring.
    """
    n = len(votes)
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    ids = sorted({v for v in votes if v is not None})
    if not ids:
        return 0.0
    column = {cid: j for j, cid in enumerate(ids)}
    correct_mask = np.array([cid in correct_clusters for cid in ids], dtype=bool)
    if not correct_mask.any():
        return 0.0
    one_hot = np.zeros((n, len(ids)), dtype=np.int64)
    for i, v in enumerate(votes):
        if v is not None:
            one_hot[i, column[v]] = 1
    if k == n:
        return float(vote_credit(one_hot.sum(axis=0), correct_mask)[0])
    subsets = _subset_indices(n, k, max_exact_subsets, num_subsets, seed)
    counts = one_hot[subsets].sum(axis=1)  # (subsets, clusters)
    return float(vote_credit(counts, correct_mask).mean())


def majority_answer(answers: Sequence[str | None], votes: Sequence[int | None]) -> str | None:
    """The answer the full vote picks (for reports): the largest cluster, ties to the earliest sample."""
    sizes: dict[int, int] = {}
    first: dict[int, int] = {}
    for i, v in enumerate(votes):
        if v is None:
            continue
        sizes[v] = sizes.get(v, 0) + 1
        first.setdefault(v, i)
    if not sizes:
        return None
    best = min(sizes, key=lambda cid: (-sizes[cid], first[cid]))
    return answers[first[best]]


def cluster_answers(answers: Sequence[str | None], equal: Callable[[str, str], bool],
                    key: Callable[[str], object] | None = None) -> list[int | None]:
    """Cluster ids (0, 1, ...) grouping equivalent answers; None for a missing answer.

    Answers with the same ``key`` (e.g. a normalised string) share a cluster without a call to
    ``equal``; otherwise each new answer joins the first cluster whose representative it
    ``equal``s, tested in both directions. Cost: O(distinct keys x clusters) calls of ``equal``.
    """
    key = key or (lambda a: a)
    by_key: dict[object, int] = {}
    representatives: list[str] = []
    out: list[int | None] = []
    for answer in answers:
        if answer is None or not str(answer).strip():
            out.append(None)
            continue
        k = key(answer)
        if k in by_key:
            out.append(by_key[k])
            continue
        cluster = None
        for cid, rep in enumerate(representatives):
            if equal(answer, rep) or equal(rep, answer):
                cluster = cid
                break
        if cluster is None:
            cluster = len(representatives)
            representatives.append(answer)
        by_key[k] = cluster
        out.append(cluster)
    return out
