"""Shared test fixtures: where the real test data is, and the Beam runners every stage must run on."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.paths import BENCHMARK_DIR, SAMPLE_DIR, SEED_DIR, shared_data_dir

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The Beam runners a stage must give the same results on. None of them downloads anything
# (the DirectRunner of Beam >= 2.68 would first try to fetch Prism).
BEAM_RUNNERS = {
    "inprocess": ["--runner=FnApiRunner"],
    "multiprocess": ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    "portable": ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"],
}

# Builds a Dataflow job offline (nothing is submitted, nothing is contacted). Bucket and project
# names must be syntactically valid or Beam's option validation tries to create a default bucket.
DATAFLOW_DRY_RUN_ARGS = [
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--no_auth",
    "--project=dsm-test-project",
    "--region=us-central1",
    "--temp_location=gs://dsm-test-bucket/tmp",
]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public test data (``../shared/data``); skips the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared test data (../shared/data or $DSM_SHARED_DATA) is not present on this machine")
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def benchmark_dir() -> Path:
    return BENCHMARK_DIR


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    return SEED_DIR


@pytest.fixture(params=sorted(BEAM_RUNNERS), ids=sorted(BEAM_RUNNERS))
def beam_runner(request) -> list[str]:
    """Parametrises a test over every Beam runner in ``BEAM_RUNNERS``; yields its pipeline args."""
    return list(BEAM_RUNNERS[request.param])
