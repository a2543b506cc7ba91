"""Hand-computed n-grams and 64-bit window hashes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.decontaminate.ngrams import (
    BASE,
    ngram_text,
    ngrams,
    sequence_hash,
    token_hash,
    token_hashes,
    window_hashes,
)

M = 1 << 64
B = int(BASE)


def test_ngrams_windows():
    assert ngrams(["a", "b", "c", "d"], 2) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert ngrams(["a", "b"], 3) == []
    assert ngram_text(["a", "b", "c", "d"], 1, 2) == "b c"
    with pytest.raises(ValueError):
        ngrams(["a"], 0)


def test_token_hash_is_stable_across_processes():
    # pinned values: a saved index must stay valid across Python processes, versions, machines
    assert token_hash("the") == 3331141520948189790
    assert token_hash("文") == 12918189876192945262
    assert token_hashes(["the", "文"]).tolist() == [3331141520948189790, 12918189876192945262]


def test_window_hashes_by_hand():
    h = np.array([1, 2, 3], dtype=np.uint64)
    assert window_hashes(h, 1).tolist() == [1, 2, 3]
    assert window_hashes(h, 2).tolist() == [(1 * B + 2) % M, (2 * B + 3) % M]
    assert window_hashes(h, 3).tolist() == [((1 * B + 2) * B + 3) % M]
    assert window_hashes(h, 4).tolist() == []
    with pytest.raises(ValueError):
        window_hashes(h, 0)


def test_equal_windows_hash_equal_wherever_they_are():
    tokens = ["x", "y", "z", "w", "x", "y", "z"]
    wh = window_hashes(token_hashes(tokens), 3)
    assert wh[0] == wh[4] == sequence_hash(["x", "y", "z"])
    assert len(set(wh.tolist())) == 4  # xyz, yzw, zwx, wxy
