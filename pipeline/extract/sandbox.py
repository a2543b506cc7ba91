"""Run the HTML extractor with a per-page time limit (and memory limit) that works in worker threads.

Why a child process: pathological HTML can make an HTML extractor run for minutes (we measured
150 s for one 16 MB page), exhaust memory, or crash the C parser. ``signal.alarm`` only works in
the main thread (Beam runs DoFns in worker threads), and a thread that overran its time cannot be
stopped. So ``SandboxedExtractor`` keeps one long-lived child process per ``DoFn`` instance, sends
it ``(html, url)`` over a pipe and waits at most ``timeout_s``; a child that overruns is killed
and replaced, and the page becomes a counted reject. The child's address space can be capped
(``memory_limit_mb``, via ``RLIMIT_AS``) so one page cannot take a worker's memory.

The child is a fresh interpreter (``python -m pipeline.extract.sandbox``), never ``fork``ed from
the multi-threaded Beam worker, and never re-runs the parent's ``__main__`` (which
``multiprocessing``'s spawn/forkserver would); it costs about a second to start, once per
``DoFn`` instance and again after each timeout. Pages travel over a pipe as pickles.

``SandboxPool`` bounds the children per worker process: threads lease one, so a Beam worker with
many threads runs ``--extract_processes`` children, not one per thread.

Modes: ``process`` (default, isolated as above), ``thread`` (a watchdog thread gives the time
limit, but an overrunning extraction keeps running in the background until it returns: use only
where child processes are forbidden), ``inline`` (no limit: for benchmarks and debugging).
The datatrove library made the same choice (an extractor sandbox process with a timeout).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from pipeline.extract.html_math import Extracted, extract_main_text

MODES = ("process", "thread", "inline")
STARTUP_TIMEOUT_S = 120.0
_WARM_UP_PAGE = (
    "<html><head><title>Warm-up</title></head><body><article><h1>Warm-up</h1>"
    "<p>A short paragraph with a formula \\(x^2 + 1\\) and some text so the extractor runs every step.</p>"
    "<p>Another paragraph: $$\\sum_{i=1}^n i = \\frac{n(n+1)}{2}$$ closes the page.</p></article></body></html>"
)


class ExtractionError(RuntimeError):
    """Extraction of one page failed; ``reason`` is the reject reason."""

    reason = "extract_error"


class ExtractionTimeout(ExtractionError):
    reason = "extract_timeout"


class ExtractionCrashed(ExtractionError):
    """The child process died (segfault, out of memory kill) while extracting the page."""

    reason = "extract_crashed"


class ExtractionMemoryError(ExtractionError):
    reason = "extract_out_of_memory"


@dataclass(frozen=True)
class SandboxConfig:
    timeout_s: float = 20.0
    memory_limit_mb: int = 4096  # address-space cap of the child; 0 disables
    mode: str = "process"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"extraction mode must be one of {MODES}, got {self.mode!r}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.memory_limit_mb < 0:
            raise ValueError("memory_limit_mb must be >= 0")


def _child_env() -> dict[str, str]:
    """The child's environment: the parent's, with this package importable whatever the cwd."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    # One page at a time: no BLAS/OpenMP thread pools (their per-thread reservations would eat the
    # address-space cap on many-core machines if the extractor ever imports numpy).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def _child_main(conn, reply_conn, memory_limit_mb: int) -> None:
    """Child loop: receive (html, url), reply ("ok", text, title, n, sources) or ("error", kind, message)."""
    if memory_limit_mb:
        try:
            import resource

            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):  # pragma: no cover - platform dependent
            pass
    try:  # warm up (lazy imports, compiled patterns) so that the first page's time limit is fair
        extract_main_text(_WARM_UP_PAGE, "http://warm-up.invalid/")
    except Exception as exc:  # noqa: BLE001 - the real pages will report the problem
        logging.getLogger(__name__).warning("extractor warm-up failed: %s", exc)
    try:
        reply_conn.send(("ready",))
    except OSError:
        return
    while True:
        try:
            html, url = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return  # parent went away
        try:
            result = extract_main_text(html, url)
            reply = ("ok", result.text, result.title, int(result.num_formulas), dict(result.formula_sources))
        except MemoryError:
            reply = ("error", "memory", "MemoryError")
        except RecursionError as exc:
            reply = ("error", "recursion", repr(exc)[:300])
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a counted reject
            reply = ("error", "exception", f"{type(exc).__name__}: {exc}"[:500])
        del html
        try:
            reply_conn.send(reply)
        except (OSError, MemoryError):
            return


class SandboxedExtractor:
    """Callable ``(html, url) -> Extracted`` that enforces ``SandboxConfig``'s limits.

    Raises an ``ExtractionError`` subclass (timeout, crash, out of memory, or the extractor's own
    exception) for the page at hand; the next call works again. Not thread-safe: use one per thread
    (Beam creates one ``DoFn`` instance per worker thread). ``close()`` stops the child.
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._process: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._conn: Connection | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.restarts = 0

    # -- process mode -------------------------------------------------------------------------
    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.extract.sandbox", str(to_child_r), str(from_child_w),
                 str(self.config.memory_limit_mb)],
                stdin=subprocess.DEVNULL,
                pass_fds=(to_child_r, from_child_w),
                env=_child_env(),
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._conn = Connection(from_child_r, writable=False)
        # The child imports the extractor before it says "ready": page time limits exclude start-up.
        try:
            ready = self._conn.poll(STARTUP_TIMEOUT_S) and self._conn.recv() == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._stop()
            raise ExtractionCrashed(f"the extractor process did not start (exit code {code})")

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _stop(self) -> int | None:
        """Stop the child; returns its exit code (None if there was none)."""
        for conn in (self._send, self._conn):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        self._send = self._conn = None
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            return None

    def _extract_in_process(self, html: str, url: str | None) -> Extracted:
        if not self._alive():
            if self._process is not None:
                self._stop()
                self.restarts += 1
            self._start()
        try:
            self._send.send((html, url))
        except (OSError, ValueError) as exc:
            self._stop()
            raise ExtractionCrashed(f"could not hand the page to the extractor process: {exc}") from exc
        deadline = time.monotonic() + self.config.timeout_s
        try:
            ready = self._conn.poll(max(0.0, deadline - time.monotonic()))
        except (OSError, EOFError):
            ready = True  # the recv below reports the failure
        if not ready:
            self._stop()
            self.restarts += 1
            raise ExtractionTimeout(f"extraction took longer than {self.config.timeout_s:g} s; page skipped")
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            time.sleep(0.05)  # let the dying child be reaped so its exit code is known
            exitcode = self._process.poll() if self._process is not None else None
            self._stop()
            self.restarts += 1
            if exitcode == -9:
                raise ExtractionMemoryError("extractor process was killed (SIGKILL, likely out of memory)") from exc
            raise ExtractionCrashed(f"extractor process died (exit code {exitcode})") from exc
        return _from_reply(reply)

    # -- thread mode --------------------------------------------------------------------------
    def _extract_in_thread(self, html: str, url: str | None) -> Extracted:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract")
        future = self._pool.submit(extract_main_text, html, url)
        try:
            return future.result(timeout=self.config.timeout_s)
        except concurrent.futures.TimeoutError:
            # The overrunning thread cannot be stopped; abandon it and its pool.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.restarts += 1
            raise ExtractionTimeout(f"extraction took longer than {self.config.timeout_s:g} s; page skipped") from None
        except MemoryError as exc:
            raise ExtractionMemoryError("MemoryError") from exc
        except Exception as exc:
            raise ExtractionError(f"{type(exc).__name__}: {exc}"[:500]) from exc

    # -- public -------------------------------------------------------------------------------
    def __call__(self, html: str, url: str | None = None) -> Extracted:
        if self.config.mode == "process":
            return self._extract_in_process(html, url)
        if self.config.mode == "thread":
            return self._extract_in_thread(html, url)
        try:
            return extract_main_text(html, url)
        except MemoryError as exc:
            raise ExtractionMemoryError("MemoryError") from exc
        except Exception as exc:
            raise ExtractionError(f"{type(exc).__name__}: {exc}"[:500]) from exc

    def close(self) -> None:
        """Stop the child process (or thread pool); the extractor may be used again afterwards."""
        self._stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # best effort; Beam does not guarantee DoFn.teardown (children are daemons too)
        with contextlib.suppress(Exception):
            self.close()


class SandboxPool:
    """At most ``size`` ``SandboxedExtractor``s shared by the threads of one worker process.

    Beam runs many ``DoFn`` instances per worker process (Dataflow: 12 threads per SDK process, one
    SDK process per vCPU); one child each would cost ~100 MB per thread for no extra throughput,
    since extraction is CPU-bound. Threads ``lease()`` an extractor, waiting when all are busy.
    """

    def __init__(self, config: SandboxConfig, size: int):
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.config = config
        self.size = size
        self._free: queue.LifoQueue[SandboxedExtractor] = queue.LifoQueue()
        self._all: list[SandboxedExtractor] = []
        self._lock = threading.Lock()

    def _acquire(self) -> SandboxedExtractor:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._all) < self.size:
                extractor = SandboxedExtractor(self.config)
                self._all.append(extractor)
                return extractor
        return self._free.get()

    @contextlib.contextmanager
    def lease(self):
        """``with pool.lease() as extract: extract(html, url)``."""
        extractor = self._acquire()
        try:
            yield extractor
        finally:
            self._free.put(extractor)

    @property
    def restarts(self) -> int:
        return sum(e.restarts for e in self._all)

    def close(self) -> None:
        for extractor in self._all:
            extractor.close()


_POOLS: dict[tuple[SandboxConfig, int], SandboxPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(config: SandboxConfig, size: int) -> SandboxPool:
    """The process-wide pool for ``(config, size)``, created on first use; closed at exit."""
    with _POOLS_LOCK:
        pool = _POOLS.get((config, size))
        if pool is None:
            if not _POOLS:
                atexit.register(_close_pools)
            pool = _POOLS[(config, size)] = SandboxPool(config, size)
        return pool


def _close_pools() -> None:
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            with contextlib.suppress(Exception):
                pool.close()
        _POOLS.clear()


def _from_reply(reply) -> Extracted:
    status = reply[0]
    if status == "ok":
        _, text, title, num_formulas, sources = reply
        return Extracted(text=text or "", title=title, num_formulas=num_formulas, formula_sources=sources)
    _, kind, message = reply
    if kind == "memory":
        raise ExtractionMemoryError(f"extractor ran out of memory: {message}")
    if kind == "recursion":
        raise ExtractionError(f"extractor hit the recursion limit: {message}")
    raise ExtractionError(message)


if __name__ == "__main__":  # the child process: python -m pipeline.extract.sandbox READ_FD WRITE_FD MEMORY_MB
    _child_main(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False),
                int(sys.argv[3]))
