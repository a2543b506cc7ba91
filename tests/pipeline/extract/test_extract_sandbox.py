"""The extraction sandbox: per-page time limits that work in threads, restarts, a bounded pool."""
from __future__ import annotations

import threading

import pytest

from pipeline.extract.sandbox import (
    ExtractionTimeout,
    SandboxConfig,
    SandboxedExtractor,
    SandboxPool,
)

SLOW_PAGE = "<html><body>" + "<p>word word word</p>" * 60_000 + "</body></html>"  # seconds of work


def page(n: int) -> str:
    return (f"<html><head><title>Page {n}</title></head><body><article><h1>Page {n}</h1>"
            f"<p>This is paragraph number {n} of a page about the equation $x^{n} = 1$ and its roots.</p>"
            f"<p>Every root of unity lies on the unit circle, which page {n} explains at length.</p>"
            "</article></body></html>")


def test_timeout_kills_the_child_and_the_next_page_works():
    with SandboxedExtractor(SandboxConfig(timeout_s=0.5)) as extract:
        assert "paragraph number 1" in extract(page(1), "http://a/1").text
        first_child = extract._process.pid
        with pytest.raises(ExtractionTimeout) as err:
            extract(SLOW_PAGE, "http://slow/")
        assert err.value.reason == "extract_timeout" and extract.restarts == 1
        assert "paragraph number 2" in extract(page(2), "http://a/2").text
        assert extract._process.pid != first_child


def test_thread_mode_also_enforces_the_limit():
    from pipeline.extract.html_math import extract_main_text

    assert "paragraph number 0" in extract_main_text(page(0)).text  # warm (lazy imports) in this process
    extract = SandboxedExtractor(SandboxConfig(timeout_s=0.2, mode="thread"))
    with pytest.raises(ExtractionTimeout):
        extract(SLOW_PAGE[: len(SLOW_PAGE) // 4], None)  # ~1.5 s of work (>= 7x the limit): short, since it cannot be stopped
    # The overrunning thread keeps running in the background (the documented cost of thread mode) and
    # competes for the GIL; let it end so the next page is timed on its own work, not on a busy CPU.
    abandoned = [t for t in threading.enumerate() if t.name.startswith("extract")]
    assert abandoned, "the overrunning extraction should still be running after the timeout"
    for thread in abandoned:
        thread.join(timeout=60)
    assert "paragraph number 3" in extract(page(3), None).text
    assert extract.restarts == 1
    extract.close()


def test_pool_is_shared_by_threads_and_bounded():
    pool = SandboxPool(SandboxConfig(timeout_s=30), size=1)
    results: dict[int, str] = {}

    def work(n: int) -> None:
        with pool.lease() as extract:
            results[n] = extract(page(n), f"http://a/{n}").text

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.close()
    assert sorted(results) == list(range(6))
    assert all(f"paragraph number {n}" in text for n, text in results.items())
    assert len(pool._all) == 1  # six threads, one child process


@pytest.mark.parametrize("kwargs", [{"mode": "fork"}, {"timeout_s": 0}, {"memory_limit_mb": -1}])
def test_config_is_validated(kwargs):
    with pytest.raises(ValueError):
        SandboxConfig(**kwargs)
