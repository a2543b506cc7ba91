"""Same input, same corpus (issue 16.2) on the shared real crawls: a math-sparse pool built from the
real Common Crawl and other crawls of ``shared/data/warc`` plus the labelled math pages, run
through the whole chain in-process and on the portable runner (the bundled sample is covered on
all three local runners in ``test_run.py``). The corpus shards must be byte-identical.

The seed is a third of the bundled one (every third row): the rounds' fastText training on the
driver is most of a chain's time here, and it is the same code on both runners."""
from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks.corpus_quality import build_pool
from pipeline.run import run
from pipeline.testing import BEAM_RUNNERS, corpus_fingerprint


@pytest.fixture(scope="module")
def crawl_pool(shared_data, tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("crawl_pool") / "pool.warc.gz"
    labels = build_pool(shared_data, 0.05, path)
    return path, labels


@pytest.fixture(scope="module")
def small_seed(seed_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed.jsonl.gz"
    with gzip.open(seed_dir / "math_seed.jsonl.gz", "rt", encoding="utf-8") as src:
        rows = src.readlines()[::3]
    with gzip.open(path, "wt", encoding="utf-8") as dst:
        dst.writelines(rows)
    return path


def test_shared_crawls_give_a_byte_identical_corpus_in_process_and_on_the_portable_runner(crawl_pool, small_seed,
                                                                                         tmp_path):
    pool, labels = crawl_pool
    assert sum(v == "math" for v in labels.values()) >= 5 and len(labels) >= 200
    prints = {}
    for runner in ("inprocess", "portable"):
        out = tmp_path / runner
        run([f"--input={pool}", f"--output={out}", f"--seed={small_seed}", *BEAM_RUNNERS[runner]])
        prints[runner] = corpus_fingerprint(out)
    assert prints["inprocess"] == prints["portable"]
    rows = pq.read_table(sorted((tmp_path / "inprocess" / "corpus" / "data").glob("*.parquet"))).num_rows
    assert rows > 0 and prints["inprocess"]["shards"]
