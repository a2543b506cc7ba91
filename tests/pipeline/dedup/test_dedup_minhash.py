"""MinHash signatures (identical to datasketch given our shingle hash), shingles, LSH S-curve numbers."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from pipeline.dedup.minhash import (
    MinHashConfig,
    MinHasher,
    candidate_probability,
    estimated_jaccard,
    jaccard,
    lsh_threshold,
    optimal_bands_rows,
    shingle_hash32,
    shingle_hashes,
    shingle_set,
    shingles,
    tokenize,
)


@pytest.fixture(scope="module")
def real_texts(benchmark_dir) -> list[str]:
    with gzip.open(benchmark_dir / "math" / "MATH_test.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(60), fh)]
    with gzip.open(benchmark_dir / "cmath" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        zh = [json.loads(line)["question"] for _, line in zip(range(20), fh)]
    return [r["problem"] + "\n" + r["solution"] for r in rows] + zh


def test_signatures_identical_to_datasketch(real_texts):
    datasketch = pytest.importorskip("datasketch")
    if "scheme" not in datasketch.MinHash.__init__.__code__.co_varnames:
        pytest.skip("datasketch < 2.0 has only the legacy permutation scheme")
    cfg = MinHashConfig(num_perm=64, bands=8, rows=8, seed=7)
    ours = MinHasher(cfg).signatures(real_texts + ["", "tiny"])
    for text, sig in zip(real_texts + ["", "tiny"], ours):
        m = datasketch.MinHash(num_perm=64, seed=7, hashfunc=shingle_hash32)
        for sh in shingles(text, cfg.shingle_size):
            m.update(sh)
        assert np.array_equal(m.hashvalues, sig)


def test_shingle_hashes_are_the_hash_of_each_shingle(real_texts):
    """The vectorised hashes equal the per-shingle hash, position by position, and depend on
    token order (a permuted shingle hashes differently)."""
    for text in real_texts[:20] + ["tiny", "two words"]:
        listed = shingles(text)
        assert [int(h) for h in shingle_hashes(text)] == [shingle_hash32(s) for s in listed]
    assert shingle_hash32(b"a b c d e") != shingle_hash32(b"b a c d e")
    assert len(set(shingle_hashes(real_texts[0]).tolist())) == len(set(shingles(real_texts[0])))  # no collisions here


def test_chunking_does_not_change_signatures(real_texts):
    big = MinHasher(MinHashConfig()).signatures(real_texts)
    small = MinHasher(MinHashConfig(chunk_shingles=7)).signatures(real_texts)  # documents split over chunks
    assert np.array_equal(big, small)


def test_estimate_tracks_exact_jaccard(real_texts):
    """The MinHash estimate of many real pairs is unbiased within its standard error."""
    hasher = MinHasher(MinHashConfig(num_perm=256, bands=32, rows=8))
    a = real_texts[:40]
    b = [t[: len(t) * 2 // 3] + " " + u[: len(u) // 3] for t, u in zip(a, real_texts[40:80])]
    sa, sb = hasher.signatures(a), hasher.signatures(b)
    exact = np.array([jaccard(shingle_set(x), shingle_set(y)) for x, y in zip(a, b)])
    est = np.array([estimated_jaccard(x, y) for x, y in zip(sa, sb)])
    assert exact.std() > 0.05  # a real spread of similarities
    se = np.sqrt(exact * (1 - exact) / 256)
    assert abs((est - exact).mean()) < 3 * np.sqrt((se**2).sum()) / len(a)
    assert np.all(np.abs(est - exact) < 5 * se + 1e-9)


def test_tokens_and_shingles():
    assert tokenize("Let $x^2+1=0$, SO...") == ["let", "$", "x", "^", "2", "+", "1", "=", "0", "$", ",", "so", ".", ".", "."]
    assert tokenize("求x的值") == ["求", "x", "的", "值"]  # CJK: one character per token
    assert tokenize("ﬁnd Ⅻ") == ["find", "xii"]  # NFKC
    assert shingles("a b c d e f", 5) == [b"a b c d e", b"b c d e f"]
    assert shingles("Só   três", 5) == ["só três".encode()]  # short text: one shingle of all tokens
    assert shingles("", 5) == [] and shingles(None, 5) == [] and shingles("  \n ", 5) == []


def test_empty_text_has_empty_signature_and_no_effect_on_batch(real_texts):
    hasher = MinHasher()
    sigs = hasher.signatures(["", real_texts[0], ""])
    assert np.all(sigs[0] == 0xFFFFFFFF) and np.all(sigs[2] == 0xFFFFFFFF)
    assert np.array_equal(sigs[1], hasher.signatures([real_texts[0]])[0])


def test_s_curve_hand_computed():
    # 16 bands x 8 rows at s = 0.5: 1 - (1 - 0.5**8)**16 = 1 - (255/256)**16
    assert candidate_probability(0.5, 16, 8) == pytest.approx(1 - (255 / 256) ** 16)
    assert candidate_probability(0.8, 16, 8) == pytest.approx(0.9470, abs=1e-4)
    assert candidate_probability(1.0, 16, 8) == 1.0 and candidate_probability(0.0, 16, 8) == 0.0
    assert lsh_threshold(16, 8) == pytest.approx(0.7071, abs=1e-4)  # 16 ** (-1/8) = 2 ** (-1/2)
    assert MinHashConfig().to_dict()["lsh_midpoint"] == pytest.approx(32 ** -0.25, abs=1e-4)  # 0.4204


def test_optimal_bands_rows_matches_datasketch_choice():
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold, num_perm in [(0.7, 128), (0.8, 128), (0.5, 64)]:
        assert optimal_bands_rows(threshold, num_perm) == lsh._optimal_param(threshold, num_perm, 0.5, 0.5)


def test_band_keys():
    cfg = MinHashConfig(num_perm=12, bands=3, rows=4)
    sig = np.arange(12, dtype=np.uint32)
    keys = MinHasher(cfg).band_keys(sig)
    assert len(keys) == 3 and keys[1] == bytes([1]) + np.arange(4, 8, dtype="<u4").tobytes()


@pytest.mark.parametrize("kwargs", [{"bands": 17, "rows": 8}, {"shingle_size": 0}, {"num_perm": 0}])
def test_invalid_config_rejected(kwargs):
    with pytest.raises(ValueError):
        MinHashConfig(**kwargs)
