"""Mixing weighted sources by tokens, deterministically.

The paper trains on a fixed mixture measured in tokens (56% math corpus, 4% AlgebraicStack, 10%
arXiv, 20% GitHub code, 10% Common Crawl). Here the next document always comes from the source
that is furthest behind its share: the one with the smallest ``tokens_taken / weight`` (ties go
to the earlier source). Unlike sampling a source at random with probability ``weight``, this
needs no random state, and the realised token shares differ from the weights by at most about
one document's length at every point of the run, not only on average.
"""
from __future__ import annotations

from collections.abc import Sequence


def normalise_weights(weights: Sequence[float]) -> list[float]:
    """Weights scaled to sum to 1; every weight must be positive."""
    if not weights:
        raise ValueError("at least one source is needed")
    if any(w <= 0 for w in weights):
        raise ValueError(f"source weights must be positive, got {list(weights)}")
    total = float(sum(weights))
    return [w / total for w in weights]


def pick_source(tokens_taken: Sequence[int], weights: Sequence[float]) -> int:
    """Index of the source whose ``tokens_taken / weight`` is smallest (the most behind its share)."""
    best, best_ratio = 0, None
    for i, (taken, weight) in enumerate(zip(tokens_taken, weights)):
        ratio = taken / weight
        if best_ratio is None or ratio < best_ratio:
            best, best_ratio = i, ratio
    return best


def realised_shares(tokens: Sequence[int]) -> list[float]:
    """Each source's share of all tokens (zeros when there are none)."""
    total = sum(tokens)
    return [t / total if total else 0.0 for t in tokens]
