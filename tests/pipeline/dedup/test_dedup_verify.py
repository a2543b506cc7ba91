"""Candidate edges from LSH buckets and their exact-Jaccard verification."""
from __future__ import annotations

import gzip
import json
from itertools import combinations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.dedup.minhash import (
    MinHashConfig,
    candidate_bands_rows,
    candidate_probability,
    fingerprint_jaccard,
    shingle_hashes,
    jaccard,
    shingle_fingerprint,
    shingle_set,
    shingles,
)
from pipeline.dedup.verify import BucketCandidateEdges, VerifyEdges, bucket_candidate_edges


@pytest.fixture(scope="module")
def texts(benchmark_dir) -> list[str]:
    with gzip.open(benchmark_dir / "math" / "MATH_test.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(200), fh)]
    return [r["problem"] + "\n" + r["solution"] for r in rows if len(r["solution"].split()) > 80][:12]


def fingerprint(text: str) -> bytes:
    return shingle_fingerprint(shingle_hashes(text))


def test_bucket_links_every_member_to_the_smallest_members():
    assert sorted(bucket_candidate_edges(["d", "b", "a", "c", "e"], 2)) == sorted(
        [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("b", "d"), ("a", "e"), ("b", "e")])
    assert sorted(bucket_candidate_edges(["c", "a", "b"], 1)) == [("a", "b"), ("a", "c")]  # a star
    assert sorted(bucket_candidate_edges(["c", "a", "b", "d"], 3)) == sorted(combinations("abcd", 2))  # small: all pairs
    assert list(bucket_candidate_edges(["a"], 3)) == []
    with pytest.raises(ValueError):
        list(bucket_candidate_edges(["a"], 0))


def test_candidate_banding_hand_computed():
    # 0.7 with 128 permutations: 5 rows x 25 bands give 1 - (1 - 0.7**5)**25 = 0.98995 < 0.999,
    # 4 rows x 32 bands give 1 - (1 - 0.7**4)**32 = 1 - 0.7599**32 = 0.99985
    assert candidate_probability(0.7, 25, 5) == pytest.approx(0.98995, abs=1e-5)
    assert candidate_probability(0.7, 32, 4) == pytest.approx(0.99985, abs=1e-5)
    assert candidate_bands_rows(0.7, 128) == (32, 4)
    assert candidate_bands_rows(0.9, 128) == (16, 8)  # 1 - (1 - 0.9**8)**16 = 0.99998; 9 rows x 14: 0.9989
    cfg = MinHashConfig()
    assert (cfg.bands, cfg.rows, cfg.threshold) == (32, 4, 0.7)
    assert MinHashConfig.for_threshold(0.9) == MinHashConfig(bands=16, rows=8, threshold=0.9)
    with pytest.raises(ValueError):
        candidate_bands_rows(0.2, 4)  # 4 permutations cannot reach 0.999 at 0.2


def test_fingerprint_jaccard_is_the_exact_shingle_jaccard(texts):
    a, b = texts[0], texts[0][: len(texts[0]) // 2] + " " + texts[1]
    assert fingerprint_jaccard(fingerprint(a), fingerprint(b)) == jaccard(shingle_set(a), shingle_set(b))
    assert fingerprint_jaccard(fingerprint(a), fingerprint(a)) == 1.0
    assert fingerprint_jaccard(fingerprint(""), fingerprint("")) == 1.0
    assert fingerprint_jaccard(fingerprint("one two"), fingerprint("three four")) == 0.0
    assert len(fingerprint("a b c d e f a b c d e")) == 4 * 6  # distinct shingles only


def test_bounded_fingerprint_is_exact_for_short_pages_and_close_for_long_ones(texts):
    """The verification sketch (``fingerprint_hashes``, bottom-k): pages of fewer distinct shingles
    than the bound get the exact Jaccard; long pages made of real texts (a shared part plus edits of
    every strength) get an estimate within 4 standard errors of the exact value, from at most
    ``4 * k`` bytes."""
    k = MinHashConfig().fingerprint_hashes
    a = texts[0]
    b = a[: len(a) // 2] + " and so we are done, as the second half of this page says in other words."
    assert len(shingle_set(a)) < k and len(shingle_set(b)) < k and 0 < jaccard(shingle_set(a), shingle_set(b)) < 1
    assert fingerprint_jaccard(fingerprint(a), fingerprint(b)) == fingerprint_jaccard(
        shingle_fingerprint(shingle_hashes(a), k), shingle_fingerprint(shingle_hashes(b), k), k)
    long_page = "\n".join(texts)  # ~12 real solutions: thousands of shingles
    assert len(shingle_set(long_page)) > 4 * k
    for keep in (3, 6, 9, 11):
        other = "\n".join(texts[:keep] + [t[::-1] for t in texts[keep:]])  # the rest rewritten
        exact = jaccard(shingle_set(long_page), shingle_set(other))
        fa, fb = (shingle_fingerprint(shingle_hashes(t), k) for t in (long_page, other))
        assert len(fa) == len(fb) == 4 * k
        se = (exact * (1 - exact) / k) ** 0.5
        assert abs(fingerprint_jaccard(fa, fb, k) - exact) <= 4 * se + 1e-9, (keep, exact)


def test_verify_keeps_exactly_the_pairs_at_or_above_the_threshold(texts):
    """Pairs of real texts with Jaccard spread over 0..1; a bucket whose minimum resembles
    neither of two near-duplicate members still links them (not with a plain star)."""
    base = texts[0]
    words = base.split()
    pages = {f"n{i:02d}": " ".join(words[: len(words) - i * len(words) // 12]) for i in range(6)}  # truncations
    pages["a00"] = texts[1]  # bucket minimum, unrelated to the rest
    pages["x"] = texts[2]
    pages["y"] = texts[2] + " Thanks for reading."
    threshold = 0.7
    exact = {(u, v): jaccard(shingle_set(pages[u]), shingle_set(pages[v])) for u, v in combinations(sorted(pages), 2)}
    assert any(s >= threshold for s in exact.values()) and any(0.3 < s < threshold for s in exact.values())
    truncations = sorted(k for k in pages if k.startswith("n"))
    buckets = {"b1": truncations, "b2": ["a00", "x", "y"]}
    fps = [(k, fingerprint(t)) for k, t in pages.items()]
    with beam.Pipeline(runner="FnApiRunner") as p:
        fp = p | beam.Create(fps)
        entries = p | "Buckets" >> beam.Create([(b, m) for b, ms in buckets.items() for m in ms])
        for neighbours in (3, 1):
            candidates = {e for members in buckets.values() for e in bucket_candidate_edges(members, neighbours)}
            want = sorted(e for e in candidates if exact[e] >= threshold)
            # the two similar members of b2 are linked only when checked against more than the minimum
            assert (("x", "y") in want) == (neighbours == 3)
            assert len(want) >= 3 and len(candidates) > len(want)
            cands = entries | f"Candidates{neighbours}" >> BucketCandidateEdges(neighbours)
            verified = cands | f"Verify{neighbours}" >> VerifyEdges(fp, threshold)
            assert_that(verified, equal_to(want), label=f"Check{neighbours}")
