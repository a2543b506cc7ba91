"""Pure n-gram functions over normalised tokens, and their 64-bit hashes.

A token hashes to the first 8 bytes of its BLAKE2b digest (stable across processes and
machines, unlike Python's salted ``hash``). A window of ``n`` token hashes ``t_0..t_{n-1}``
hashes to the polynomial ``sum_j t_j * B^(n-1-j) mod 2^64`` for a fixed odd ``B``, computed
for all windows of a page at once with numpy (``n`` vectorised multiply-adds). Hashes of
windows of different lengths live in different tables, so they are never compared.

With N indexed n-grams, a random page window collides with one of them with probability
about N / 2^64 (~1e-13 for the default index); the index nevertheless checks every hit
against the stored benchmark text, so a collision is counted, never acted on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# Odd 64-bit multiplier for the polynomial window hash (the 64-bit golden-ratio constant).
BASE = np.uint64(0x9E3779B97F4A7C15)


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All contiguous ``n``-token windows of ``tokens``, in order (empty when fewer than ``n``)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ngram_text(tokens: Sequence[str], start: int, n: int) -> str:
    """The window ``tokens[start:start+n]`` as one space-joined string (for audits)."""
    return " ".join(tokens[start : start + n])


@lru_cache(maxsize=1 << 20)
def token_hash(token: str) -> int:
    """A stable 64-bit hash of one token (BLAKE2b, first 8 bytes, little endian)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def token_hashes(tokens: Sequence[str]) -> np.ndarray:
    """The ``token_hash`` of every token, as a ``uint64`` array of the same length."""
    return np.fromiter((token_hash(t) for t in tokens), dtype=np.uint64, count=len(tokens))


def window_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """The hash of every ``n``-token window of a token-hash array (``len - n + 1`` values, or none).

    ``window_hashes(h, n)[i]`` depends only on ``h[i:i+n]``, so equal windows hash equally
    wherever they occur.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    count = len(hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    out = hashes[:count].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            out *= BASE
            out += hashes[j : j + count]
    return out


def sequence_hash(tokens: Sequence[str]) -> int:
    """The window hash of the whole of ``tokens`` (equal to ``window_hashes(..., len(tokens))[0]``)."""
    return int(window_hashes(token_hashes(tokens), len(tokens))[0])
