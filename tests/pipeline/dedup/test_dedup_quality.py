"""Near-duplicate detection vs exact Jaccard on generated variants of real texts.

Every real text (web main texts, Common Crawl documents, MATH, GSM8K and CMATH problems from
``../shared/data``) gets one variant made by web-style edits of random strength, so the
similarities spread over 0..1. The pipeline's clusters are compared with every pair whose
exact shingle Jaccard is >= the LSH threshold:

* overall, precision and recall agree with what the S-curve predicts for these very pairs;
* outside the S-curve's transition band (threshold +- 0.1), both are >= 0.95.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import random
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dedup.evaluation import cluster_pairs, make_variant, pair_metrics, similar_pairs
from pipeline.dedup.minhash import MinHashConfig
from pipeline.dedup.pipeline import run
from pipeline.schema import DOCUMENT_SCHEMA


def _jsonl(path, limit=None):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(limit or 10**9), fh)]


@pytest.fixture(scope="module")
def evaluated(shared_data, tmp_path_factory):
    bases = [d["main_text"] for d in _jsonl(shared_data / "html" / "main_text.jsonl")]
    for f in sorted((shared_data / "text").glob("*.jsonl.gz")):
        bases += [d["text"] for d in _jsonl(f)]
    bases += [d["problem"] + "\n" + d["solution"] for d in _jsonl(shared_data / "benchmarks/math/MATH_test.jsonl", 150)]
    bases += [d["question"] + "\n" + d["answer"] for d in _jsonl(shared_data / "benchmarks/gsm8k/test.jsonl", 80)]
    bases += [str(d["question"]) for d in _jsonl(shared_data / "benchmarks/cmath/test.jsonl", 40)]
    rng = random.Random(1234)
    rows, texts = [], {}
    for i, base in enumerate(bases):
        variant, _ = make_variant(base, bases[rng.randrange(len(bases))], rng)
        for j, text in ((2 * i, base), (2 * i + 1, variant)):
            url = f"https://site{j}.example/page"
            ident = hashlib.sha1(f"{url}\n{text}".encode()).hexdigest()
            rows.append({"id": ident, "url": url, "fetch_time": "2024-01-01T00:00:00Z", "text": text,
                         "num_chars": len(text)})
            texts[ident] = text
    folder = tmp_path_factory.mktemp("quality")
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), folder / "in.parquet")
    out = str(folder / "out")
    run(["--input", str(folder / "in.parquet"), "--output", out])
    clusters = defaultdict(list)
    for f in glob.glob(os.path.join(out, "*.parquet")):
        for r in pq.read_table(f, columns=["id"]).to_pylist():
            clusters[r["id"]].append(r["id"])
    for r in pq.read_table(os.path.join(out, "removed")).to_pylist():
        clusters[r["kept_id"]].append(r["id"])
    return cluster_pairs(list(clusters.values())), similar_pairs(texts)


def test_similarities_span_the_whole_range(evaluated):
    _, sims = evaluated
    values = list(sims.values())
    for lo, hi in [(0.05, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0001)]:
        assert sum(lo <= v < hi for v in values) >= 30, (lo, hi)


def test_precision_recall_agree_with_the_s_curve(evaluated):
    predicted, sims = evaluated
    cfg = MinHashConfig()
    m = pair_metrics(predicted, sims, cfg.threshold, cfg.bands, cfg.rows)
    assert m["pairs_true"] >= 150
    # measured within 3 standard deviations (+0.02 for merging through third pages) of the prediction
    assert abs(m["recall"] - m["expected_recall"]) <= 3 * m["recall_sd"] + 0.02, m
    assert abs(m["precision"] - m["expected_precision"]) <= 3 * m["precision_sd"] + 0.02, m


def test_precision_recall_outside_the_transition_band(evaluated):
    predicted, sims = evaluated
    cfg = MinHashConfig()
    t, margin = cfg.threshold, 0.1
    band = {p for p, s in sims.items() if t - margin < s < t + margin}
    truth = {p for p, s in sims.items() if s >= t + margin}
    judged = predicted - band
    tp = len(judged & truth)
    precision, recall = tp / len(judged), tp / len(truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall, len(truth), len(judged))
