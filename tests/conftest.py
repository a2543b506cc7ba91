"""Shared test fixtures: where the real test data is, and the Beam runners every stage must run on."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.paths import BENCHMARK_DIR, SAMPLE_DIR, SEED_DIR, shared_data_dir

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pipeline.testing import BEAM_RUNNERS, DATAFLOW_DRY_RUN_ARGS  # noqa: E402,F401  (re-exported)


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
