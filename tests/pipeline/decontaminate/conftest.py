"""Fixtures for the decontamination tests: the default benchmark index (built once per session),
real clean pages, and benchmark leaks planted into real pages (see ``decontam_helpers``)."""

from __future__ import annotations

import pytest
from decontam_helpers import Leak, cc_texts, make_leaks, math_html_texts

from pipeline.decontaminate.benchmarks_spec import parse_specs
from pipeline.decontaminate.index import BenchmarkIndex, build_index


@pytest.fixture(scope="session")
def default_index() -> BenchmarkIndex:
    """The index over the bundled default benchmarks with the default parameters."""
    return build_index(parse_specs(None))


@pytest.fixture(scope="session")
def default_index_file(default_index, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("decontaminate-index") / "index.npz"
    default_index.save(str(path))
    return str(path)


@pytest.fixture(scope="session")
def clean_pages(shared_data) -> list[tuple[str, str]]:
    """(name, text) of the 36 labelled math HTML pages (main text by the project's math-preserving
    extractor, ``pipeline.extract.html_math``, extracted once per session) and the 30
    Common Crawl text documents of the shared test data."""
    return math_html_texts(shared_data) + cc_texts(shared_data)


@pytest.fixture(scope="session")
def leaks(shared_data) -> list[Leak]:
    """The issue's six planted leaks, each inside a real page of the shared test data."""
    return make_leaks(shared_data)
