"""Benchmark of the dedup stage: MinHash signature speed, peak memory, whole-stage pages/s, quality.

Prints tables:
1. signatures per second per core: ours (token-hash shingles, batched numpy permutations) vs a
   plain per-document ``datasketch.MinHash.update`` loop (its default SHA-1 hash) and
   datasketch's ``update_batch``, on the same real texts and shingles (shingling included in
   every timing), with peak Python memory; ours is checked identical to datasketch given our
   shingle hash (``hashfunc=shingle_hash32``);
2. the whole stage (``run``, in-process runner) on real texts with generated duplicates, and on
   one huge cluster of boilerplate pages (skew), with peak RSS of the process;
3. precision/recall vs exact Jaccard on generated variants (LSH candidates + exact verification),
   next to the candidate recall the S-curve predicts.

Usage: ``python benchmarks/dedup.py [--docs 3000] [--skew 20000 50000]``
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.dedup.evaluation import cluster_pairs, generated_pages, output_clusters, pair_metrics, similar_pairs
from pipeline.dedup.minhash import MinHashConfig, MinHasher, shingle_hash32, shingles
from pipeline.dedup.pipeline import run
from pipeline.paths import BENCHMARK_DIR, shared_data_dir
from pipeline.schema import DOCUMENT_SCHEMA


def real_texts(n: int) -> list[str]:
    texts = []
    shared = shared_data_dir()
    if shared is not None:
        with open(shared / "html" / "main_text.jsonl", encoding="utf-8") as fh:
            texts += [json.loads(line)["main_text"] for line in fh]
    with gzip.open(BENCHMARK_DIR / "math" / "MATH_test.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts += [d["problem"] + "\n" + d["solution"] for d in map(json.loads, fh)]
    with gzip.open(BENCHMARK_DIR / "gsm8k" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts += [d["question"] + "\n" + d["answer"] for d in map(json.loads, fh)]
    return (texts * (n // len(texts) + 1))[:n]


def timed(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak


def bench_signatures(texts: list[str], cfg: MinHashConfig) -> list[tuple]:
    from datasketch import MinHash

    def ours():
        return MinHasher(cfg).signatures(texts)

    def plain_loop():
        out = []
        for t in texts:
            m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
            for sh in shingles(t, cfg.shingle_size):
                m.update(sh)
            out.append(m.hashvalues)
        return out

    def update_batch():
        out = []
        for t in texts:
            m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
            m.update_batch(shingles(t, cfg.shingle_size))
            out.append(m.hashvalues)
        return out

    shingled = [shingles(t, cfg.shingle_size) for t in texts]

    def plain_from_shingles():
        out = []
        for sh in shingled:
            m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
            for x in sh:
                m.update(x)
            out.append(m.hashvalues)
        return out

    # time without tracemalloc (it slows Python code), then measure memory separately
    rows = []
    results = {}
    for name, fn in [("ours (numpy batch)", ours), ("datasketch update() loop", plain_loop),
                     ("datasketch update_batch()", update_batch),
                     ("datasketch update() loop, from shingles", plain_from_shingles)]:
        t = time.perf_counter()
        results[name] = fn()
        dt = time.perf_counter() - t
        _, _, peak = timed(fn)
        rows.append((name, len(texts) / dt, peak / 2**20))
    def with_our_hash(t):
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=shingle_hash32)
        m.update_batch(shingles(t, cfg.shingle_size))
        return m.hashvalues

    same = all(np.array_equal(a, with_our_hash(t)) for a, t in zip(results["ours (numpy batch)"][:200], texts))
    return rows, same


def make_row(url: str, text: str, fetch_time: str = "2024-01-01T00:00:00Z") -> dict:
    return {"id": hashlib.sha1(f"{url}\n{text}".encode()).hexdigest(), "url": url, "fetch_time": fetch_time,
            "text": text, "num_chars": len(text)}


def stage_run(rows: list[dict], extra: list[str] = ()) -> tuple[dict, float, str]:
    folder = tempfile.mkdtemp(prefix="dedup-bench-")
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), os.path.join(folder, "in.parquet"))
    out = os.path.join(folder, "out")
    t = time.perf_counter()
    summary = run(["--input", os.path.join(folder, "in.parquet"), "--output", out, *extra])
    return summary, time.perf_counter() - t, out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000, help="documents for the signature benchmark")
    ap.add_argument("--stage_docs", type=int, default=5000, help="documents for the whole-stage run")
    ap.add_argument("--skew", type=int, nargs="*", default=[20000], help="sizes of the one-cluster skew runs")
    args = ap.parse_args()
    cfg = MinHashConfig()

    texts = real_texts(args.docs)
    n_sh = sum(len(shingles(t)) for t in texts)
    rows, same = bench_signatures(texts, cfg)
    print(f"\n## MinHash signatures: {len(texts)} real texts, {n_sh / len(texts):.0f} shingles/doc, "
          f"{cfg.num_perm} permutations, 1 core (identical signatures: {same})")
    print("| method | signatures/s/core | speed-up | peak Python memory (MiB) |")
    print("|---|---|---|---|")
    for i, (name, rate, mem) in enumerate(rows):
        base = rows[1][1] if i < 3 else rows[4][1]
        print(f"| {name} | {rate:,.0f} | {rate / base:.1f}x | {mem:.1f} |")
    print("(rows 1-3 include tokenising and shingling the text; rows 4-5 start from the same shingles)")

    # whole stage on real texts with URL and near duplicates
    rng = random.Random(0)
    stage_texts = real_texts(args.stage_docs)
    srows = []
    for i, t in enumerate(stage_texts):
        srows.append(make_row(f"https://site.example/{i}", t))
        if rng.random() < 0.1:
            srows.append(make_row(f"https://site.example/{i}?utm_source=x", t, "2023-01-01T00:00:00Z"))
        if rng.random() < 0.1:
            srows.append(make_row(f"https://mirror.example/{i}", "Home | About | Contact\n" + t))
    print("\n## Whole stage (python -m pipeline.dedup, in-process FnApiRunner, 1 process)")
    print("| input | pages | kept | removed url / near_dup | seconds | pages/s | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    summary, dt, _ = stage_run(srows)
    c = summary["counts"]
    print(f"| real texts + duplicates | {c['input_rows']:,} | {c['kept']:,} | {c['removed']['url']:,} / "
          f"{c['removed']['near_dup']:,} | {dt:.1f} | {c['input_rows'] / dt:,.0f} | {peak_rss_mb():,.0f} |")
    body = ("Problem of the day. Let $f(x) = x^2 - 5x + 6$. Find all real roots of $f$ and explain each step. "
            "Factor the quadratic as $(x-2)(x-3)$, so the roots are $x = 2$ and $x = 3$. ") * 2
    for n in args.skew:
        krows = [make_row(f"https://daily.example/{i}", f"Posted {2000 + i // 365}-{i % 12 + 1:02d}-{i % 28 + 1:02d}. "
                          + body) for i in range(n)]
        summary, dt, _ = stage_run(krows, ["--cc_rounds", "4"])
        c = summary["counts"]
        print(f"| one cluster of {n:,} boilerplate pages | {n:,} | {c['kept']:,} | {c['removed']['url']:,} / "
              f"{c['removed']['near_dup']:,} | {dt:.1f} | {n / dt:,.0f} | {peak_rss_mb():,.0f} |")
    print("(peak RSS is of the whole process so far: the in-process runner holds each stage's data in memory;"
          " on Dataflow grouped values are paged in from shuffle)")

    # quality on generated variants
    shared = shared_data_dir()
    qrows, qtexts = generated_pages(real_texts(800), seed=1234)
    summary, _, out = stage_run(qrows, ["--cc_rounds", "3"])
    predicted, sims = cluster_pairs(output_clusters(out)), similar_pairs(qtexts)
    print(f"\n## Quality: {len(qrows)} pages (real texts{' incl. shared/data' if shared else ''} + one generated "
          f"variant each), candidates from {cfg.bands} bands x {cfg.rows} rows, exact verification at "
          f"Jaccard >= {cfg.threshold}")
    print("| true pairs | predicted pairs | precision | recall | S-curve candidate recall | candidate edges | verified |")
    print("|---|---|---|---|---|---|---|")
    m = pair_metrics(predicted, sims, cfg.threshold, cfg.bands, cfg.rows)
    lsh = summary["lsh"]
    print(f"| {m['pairs_true']} | {m['pairs_predicted']} | {m['precision']:.3f} | {m['recall']:.3f} | "
          f"{m['expected_recall']:.4f} | {lsh['candidate_edges']} | {lsh['verified_edges']} |")
    print(f"(predicted pairs below the threshold, linked through a chain of near-duplicates: "
          f"{m['below_threshold_linked']})")


if __name__ == "__main__":
    main()
