"""Math classifier: training time and scoring throughput on the sample pool, next to the plain way.

    python benchmarks/classify.py [--repeat 20] [--bucket 2000000] [--pool DIR]

Data: positives are the 3,000 bundled seed rows (MATH/GSM8K train), negatives the sample pool
(the bundled WARCs extracted in-process, ~116 pages, built on first use in ``out/bench_pool``).
Scoring runs over the pool repeated ``--repeat`` times, one thread (fastText's predict is
single-threaded per call), so docs/s is per core.

Rows:
- training: ``classifiers.train.train_from_texts`` (normalise, shuffle on disk, fastText in a
  fresh process, validation) vs ``fasttext.train_supervised`` called in-process on the same
  prepared file (the peer: what a script would do; it can hit fastText's uninitialised-memory
  NaN in a long-lived process, see ``classifiers/fasttext_worker.py``);
- scoring: ``MathClassifier.score`` (our normalisation + batched multi-line predict) vs a
  per-document ``model.predict`` loop on the same normalised text (the plain way, e.g. in
  OpenWebMath/datatrove-style filters) vs a per-document loop on raw text with newlines removed
  (no normalisation at all), and the Beam score stage end to end (in-process runner, one worker).
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fasttext
import pyarrow as pa
import pyarrow.parquet as pq

from classifiers import MathClassifier, normalize_text
from classifiers.math_classifier import MATH_LABEL, OTHER_LABEL
from classifiers.train import FastTextConfig, train_from_texts
from pipeline.paths import REPO_ROOT, SEED_DIR
from pipeline.rounds.sample_pool import build_sample_pool


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="score the pool this many times over")
    parser.add_argument("--bucket", type=int, default=2_000_000, help="fastText hash buckets (2M: fastText default)")
    parser.add_argument("--pool", default=str(REPO_ROOT / "out" / "bench_pool"))
    args = parser.parse_args()
    logging.getLogger("apache_beam").setLevel(logging.ERROR)

    pool_dir = build_sample_pool(args.pool)
    pool = pq.read_table(pool_dir).column("text").to_pylist()
    with gzip.open(SEED_DIR / "math_seed.jsonl.gz", "rt", encoding="utf-8") as fh:
        seed = [json.loads(line)["text"] for line in fh]
    cfg = FastTextConfig(bucket=args.bucket, thread=1)
    work = tempfile.mkdtemp(prefix="bench-classify-")
    model_path = os.path.join(work, "model.bin")
    rows = []

    report, seconds = timed(lambda: train_from_texts(seed, pool, model_path, cfg, validation_fraction=0.1))
    n_train = report["counts"]["train_positives"] + report["counts"]["train_negatives"]
    rows.append(("train: classifiers.train (clean process, validation)", n_train, seconds))
    train_file = os.path.join(work, "train.txt")
    with open(train_file, "w", encoding="utf-8") as fh:
        fh.writelines(f"{MATH_LABEL} {normalize_text(t)}\n" for t in seed)
        fh.writelines(f"{OTHER_LABEL} {normalize_text(t)}\n" for t in pool)
    try:
        _, seconds = timed(lambda: fasttext.train_supervised(input=train_file, **cfg.fasttext_kwargs()))
        rows.append(("train: fasttext.train_supervised in-process (peer)", len(seed) + len(pool), seconds))
    except RuntimeError as exc:
        rows.append((f"train: fasttext.train_supervised in-process (peer): {exc}", len(seed) + len(pool), float("nan")))

    classifier = MathClassifier.load(model_path)
    texts = pool * args.repeat
    _, seconds = timed(lambda: [s for i in range(0, len(texts), 256) for s in classifier.score(texts[i:i + 256])])
    rows.append(("score: MathClassifier.score, batches of 256", len(texts), seconds))
    model = classifier.model

    def per_doc(prepare):
        out = []
        for text in texts:
            labels, probs = model.predict(prepare(text), k=2)
            out.append(dict(zip(labels, probs)).get(MATH_LABEL, 0.0))
        return out

    _, seconds = timed(lambda: per_doc(normalize_text))
    rows.append(("score: per-document model.predict loop, same normalisation (peer)", len(texts), seconds))
    _, seconds = timed(lambda: per_doc(lambda t: " ".join(t.split())))
    rows.append(("score: per-document model.predict loop, raw text (peer)", len(texts), seconds))

    from pipeline.score import run as score_run

    big = os.path.join(work, "pool")
    os.makedirs(big)
    table = pq.read_table(pool_dir)
    pq.write_table(pa.concat_tables([table] * args.repeat), os.path.join(big, "part-0.parquet"))
    _, seconds = timed(lambda: score_run(["--model", model_path, "--input", big, "--output", os.path.join(work, "scored"),
                                          "--runner=FnApiRunner", "--num_shards=1"]))
    rows.append(("score: pipeline.score Beam stage end to end (in-process, 1 worker)", len(texts), seconds))

    print(f"\nsample pool: {len(pool)} pages, seed {len(seed)} rows, fastText dim {cfg.dim}, bucket {cfg.bucket}, "
          f"epoch {cfg.epoch}, wordNgrams {cfg.word_ngrams}; validation ROC-AUC {report['validation']['roc_auc']}\n")
    print(f"| {'what':<72} | {'docs':>7} | {'seconds':>8} | {'docs/s/core':>11} |")
    print(f"|{'-' * 74}|{'-' * 9}|{'-' * 10}|{'-' * 13}|")
    for name, docs, secs in rows:
        rate = docs / secs if not math.isnan(secs) and secs > 0 else float("nan")
        print(f"| {name:<72} | {docs:>7,} | {secs:>8.2f} | {rate:>11,.0f} |")


if __name__ == "__main__":
    main()
