"""Cost of the whole chain (``python -m pipeline.run``) as the pool grows, next to the peer loop
(warcio + ``trafilatura.extract``) over the same pool, in the same run:

    python -m benchmarks.chain [--sizes 2000,10000,50000] [--workers 1,2] [--precise-sizes 2000] [--work DIR]

Pools are built from the real HTML records under ``../shared/data`` (the labelled math and
non-math pages and the HTML responses of the real crawls, ~500 distinct URLs; see
``benchmarks.corpus_quality``). A pool larger than that repeats the real pages under new URLs
(``?copy=k``) with an HTML comment that makes each payload distinct, so every page is read,
hashed and extracted (the exact-duplicate pass keeps it) and the copies are removed later as
near-duplicates: extraction and dedup run on the whole pool, the rounds on the distinct pages.
The pool is ~1% math when its share of math pages is chosen so (the crawls are all non-math).
Each pool runs with the bundled sample config and the default two-tier extraction, on one worker
and on two; at ``--precise-sizes`` also with the single tier (``extract: {tier: precise}``).

Per pool size and worker count the table prints, from each stage's ``summary.json`` ``timing``:
seconds and input pages/s/core per stage, the whole chain's pages/s/core, the peak RSS of the run
(the largest process, from ``getrusage`` of the child), the bytes each stage wrote, and the cost
of one 3-billion-page Common Crawl snapshot in core-hours at the measured whole-chain rate. The
peer row is one process over the same WARC file. Memory must stay flat as the pool grows: compare
the RSS column between sizes.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from benchmarks.corpus_quality import SHARED, crawl_pages, labelled_pages, tier_config
from pipeline.paths import REPO_ROOT
from pipeline.run import STAGES

SNAPSHOT_PAGES = 3_000_000_000
# Runs the chain as its own child and prints the peak RSS (KiB) of the largest process below it:
# a fresh RUSAGE_CHILDREN per measured run (the benchmark's own one only ever grows).
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def build_pool(size: int, path: Path) -> int:
    """Write a pool of ``size`` HTML responses to ``path`` (see the module docstring); returns the
    number of distinct real pages it was made from."""
    pages, seen = [], set()
    for p in sorted(labelled_pages(SHARED) + crawl_pages(SHARED), key=lambda p: p["key"]):
        if p["url"] not in seen and (p["label"] == "nonmath" or len([q for q in pages if q["label"] == "math"]) < 5):
            seen.add(p["url"])
            pages.append(p)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i in range(size):
            page, copy = pages[i % len(pages)], i // len(pages)
            body, url = page["body"], page["url"]
            if copy:
                body = body + f"\n<!-- copy {copy} -->\n".encode()
                url = f"{url}{'&' if '?' in url else '?'}copy={copy}"
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                                          warc_headers_dict={"WARC-Date": "2024-01-01T00:00:00Z"}))
    return len(pages)


def peer_loop(path: Path, max_pages: int) -> tuple[int, float]:
    """warcio + trafilatura.extract over the first ``max_pages`` pages of the pool in this process:
    (pages, seconds). Its rate is per page, so a prefix of a large pool measures it."""
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    started, pages = time.perf_counter(), 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if pages >= max_pages:
                break
            if record.rec_type == "response":
                trafilatura.extract(record.content_stream().read().decode("utf-8", errors="replace"))
                pages += 1
    return pages, time.perf_counter() - started


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run_chain(pool: Path, out: Path, workers: int, config: Path | None = None) -> dict:
    """``pipeline.run`` in a child process; returns per-stage timing, bytes written and peak RSS."""
    shutil.rmtree(out, ignore_errors=True)
    runner = (["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"] if workers > 1
              else ["--runner=FnApiRunner"])
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "pipeline.run", "--input", str(pool),
                           "--output", str(out), *(["--config", str(config)] if config else []), *runner], check=True, cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    stages = {}
    for name in STAGES:
        summary = json.loads((out / name / "summary.json").read_text())
        stages[name] = {**summary.get("timing", {}), "bytes": folder_bytes(out / name)}
    return {"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "stages": stages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,10000,50000", help="pool sizes in pages")
    parser.add_argument("--workers", default="1,2", help="worker processes (1: in-process FnApiRunner)")
    parser.add_argument("--work", default="out/bench_chain")
    parser.add_argument("--precise-sizes", default="2000",
                        help="pool sizes where the single-tier chain (extract tier precise) also runs, on one core")
    parser.add_argument("--peer-pages", type=int, default=3000, help="pages of each pool the peer loop extracts")
    args = parser.parse_args(argv)
    if not (SHARED / "html" / "pages.jsonl").exists():
        sys.exit(f"skipped: the shared test data is not at {SHARED} (set DSM_SHARED_DATA)")
    work = Path(args.work)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        pool = work / f"pool-{size}.warc.gz"
        distinct = build_pool(size, pool)
        pages, peer_s = peer_loop(pool, args.peer_pages)
        rows.append({"pool": size, "what": f"peer: warcio + trafilatura.extract ({pages} pages, extraction only)",
                     "cores": 1,
                     "seconds": peer_s, "pages_per_s_core": pages / peer_s})
        runs = [(w, "fast") for w in (int(w) for w in args.workers.split(","))]
        if str(size) in args.precise_sizes.split(","):
            runs.append((1, "precise"))
        for workers, tier in runs:
            config = tier_config(tier, work / f"run-{tier}.yaml")
            r = run_chain(pool, work / f"out-{size}-{workers}-{tier}", workers, config)
            per_stage = "; ".join(f"{n} {s.get('seconds', 0):.1f}s {s.get('bytes', 0) / 1e6:.1f}MB"
                                  for n, s in r["stages"].items())
            rate = size / r["seconds"] / workers
            what = "two tiers (default)" if tier == "fast" else "one tier (--tier precise)"
            rows.append({"pool": size, "what": f"ours: pipeline.run, {what}; {distinct} distinct pages", "cores": workers,
                         "seconds": r["seconds"], "pages_per_s_core": rate,
                         "extract_pages_per_s_core": (r["stages"]["extract"].get("pages_per_s") or 0) / workers,
                         "peak_rss_mib": r["peak_rss_mib"],
                         "snapshot_core_hours": SNAPSHOT_PAGES / rate / 3600, "stages": per_stage})
    cols = ["pool", "what", "cores", "seconds", "pages_per_s_core", "extract_pages_per_s_core", "peak_rss_mib",
            "snapshot_core_hours", "stages"]
    fmt = lambda v: "-" if v is None else (f"{v:,.1f}" if isinstance(v, float) else str(v))
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c)) for c in cols) + " |")
    work.mkdir(parents=True, exist_ok=True)
    (work / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
