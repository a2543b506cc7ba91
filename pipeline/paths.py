"""Where the project's bundled data and the wider shared test data live.

The repository ships a small real sample (``data/sample``), the benchmark test splits used
for decontamination and evaluation (``data/benchmarks``) and a small seed corpus
(``data/seed``). The wider public test data (``../shared/data`` next to the checkout, or the
folder named by ``DSM_SHARED_DATA``) is optional: tests that need it skip when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
SAMPLE_DIR = DATA_DIR / "sample"
SAMPLE_WARC_GLOB = str(SAMPLE_DIR / "warc" / "*")
BENCHMARK_DIR = DATA_DIR / "benchmarks"
SEED_DIR = DATA_DIR / "seed"


def shared_data_dir() -> Path | None:
    """The shared public test-data folder, or None when it is not present on this machine."""
    candidate = Path(os.environ.get("DSM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None
