"""Cost of the whole chain (``python -m pipeline.run``) as the pool grows, next to the peer loop
(warcio + ``trafilatura.extract``) over the same pool, in the same run:

    python -m benchmarks.chain [--sizes 2000,10000,50000] [--workers 1,2] [--precise-sizes 2000] [--work DIR] [--files N] [--resume]

Pools are built from the real HTML records under ``../shared/data`` (the labelled math and
non-math pages and the HTML responses of the real crawls, ~500 distinct URLs; see
``benchmarks.corpus_quality``). A pool larger than that repeats the real pages under new URLs
(``?copy=k``) with an HTML comment that makes each payload distinct, so every page is read,
hashed and extracted (the exact-duplicate pass keeps it; only the few shared pages that are one
payload under two URLs go there, ~1.5% of a pool) and the copies are removed later as
near-duplicates: extraction and dedup run on the whole pool, the rounds on the distinct pages.
The pool takes every non-math page and 5 math pages (233 distinct pages, ~2% math; the crawls are
all non-math), so it is math-sparse like Common Crawl.
Each pool runs with the bundled sample config and the default two-tier extraction, on one worker
and on two (``--files N`` writes each pool as N archives, so that two workers have files to
share: extract and dedup read per file); at ``--precise-sizes`` also with the single tier (``extract: {tier: precise}``).

Per pool size and worker count the table prints, from each stage's ``summary.json`` ``timing``:
seconds and input pages/s/core per stage, the whole chain's pages/s/core, the peak RSS of each
stage (every stage runs as its own child, ``pipeline.run --stages NAME`` on the same output
folder; the largest process below it, from ``getrusage``), the bytes each stage wrote, and the cost
of one 3-billion-page Common Crawl snapshot in core-hours at the measured whole-chain rate. The
peer row is one process over the same WARC file. Memory must stay flat as the pool grows: compare
the RSS columns between sizes. A second table gives the marginal cost of a page between the two
largest pools (fixed costs of a run removed), the rate that extrapolates to a snapshot;
``--table-only`` prints both tables again from ``--work`` without running anything.
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


def build_pool(size: int, path: Path, files: int = 1) -> int:
    """Write a pool of ``size`` HTML responses to ``path`` (see the module docstring), or to
    ``files`` archives ``path`` with ``-NN`` before ``.warc.gz`` (page ``i`` in file ``i mod
    files``); returns the number of distinct real pages it was made from."""
    pages, seen = [], set()
    for p in sorted(labelled_pages(SHARED) + crawl_pages(SHARED), key=lambda p: p["key"]):
        if p["url"] not in seen and (p["label"] == "nonmath" or len([q for q in pages if q["label"] == "math"]) < 5):
            seen.add(p["url"])
            pages.append(p)
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = pool_files(path, files)
    handles = [open(p, "wb") for p in paths]
    writers = [WARCWriter(fh, gzip=True) for fh in handles]
    try:
        for i in range(size):
            writer = writers[i % len(writers)]
            page, copy = pages[i % len(pages)], i // len(pages)
            body, url = page["body"], page["url"]
            if copy:
                body = body + f"\n<!-- copy {copy} -->\n".encode()
                url = f"{url}{'&' if '?' in url else '?'}copy={copy}"
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                                          warc_headers_dict={"WARC-Date": "2024-01-01T00:00:00Z"}))
    finally:
        for fh in handles:
            fh.close()
    return len(pages)


def pool_files(path: Path, files: int) -> list[Path]:
    """The archives a pool of ``files`` files is written to (``path`` itself for one file)."""
    if files <= 1:
        return [path]
    stem = path.name[: -len(".warc.gz")]
    return [path.with_name(f"{stem}-{k:02d}.warc.gz") for k in range(files)]


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


def run_chain(pool: list[Path], out: Path, workers: int, config: Path | None = None) -> dict:
    """``pipeline.run`` stage by stage (``--stages NAME``), each stage in its own child process
    on the same output folder; returns per-stage timing, bytes written and peak RSS (MiB)."""
    shutil.rmtree(out, ignore_errors=True)
    runner = (["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"] if workers > 1
              else ["--runner=FnApiRunner"])
    seconds, stages = 0.0, {}
    for name in STAGES:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "pipeline.run", "--input", *map(str, pool),
                               "--output", str(out), *(["--config", str(config)] if config else []), "--stages", name,
                               *runner], check=True, cwd=REPO_ROOT, capture_output=True, text=True)
        seconds += time.perf_counter() - started
        summary = json.loads((out / name / "summary.json").read_text())
        stages[name] = {**summary.get("timing", {}), "bytes": folder_bytes(out / name),
                        "peak_rss_mib": int(done.stdout.strip().splitlines()[-1]) / 1024}
    return {"seconds": seconds, "peak_rss_mib": max(s["peak_rss_mib"] for s in stages.values()), "stages": stages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,10000,50000", help="pool sizes in pages")
    parser.add_argument("--workers", default="1,2", help="worker processes (1: in-process FnApiRunner)")
    parser.add_argument("--work", default="out/bench_chain")
    parser.add_argument("--precise-sizes", default="2000",
                        help="pool sizes where the single-tier chain (extract tier precise) also runs, on one core")
    parser.add_argument("--peer-pages", type=int, default=3000, help="pages of each pool the peer loop extracts")
    parser.add_argument("--files", type=int, default=1,
                        help="WARC files each pool is written to (extract and dedup parallelise over files)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs an earlier benchmark finished in --work (their chain_result.json)")
    parser.add_argument("--table-only", action="store_true",
                        help="print the tables again from --work (results.json and the run folders), running nothing")
    args = parser.parse_args(argv)
    work = Path(args.work)
    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    if args.table_only:
        print_tables(json.loads((work / "results.json").read_text()), work, sizes, workers)
        return
    if not (SHARED / "html" / "pages.jsonl").exists():
        sys.exit(f"skipped: the shared test data is not at {SHARED} (set DSM_SHARED_DATA)")
    rows = []
    for size in sizes:
        pool = work / f"pool-{size}.warc.gz"
        distinct = build_pool(size, pool, args.files)  # deterministic: a resumed run rebuilds the same pool
        archives = pool_files(pool, args.files)
        pages, peer_s = peer_loop(archives[0], args.peer_pages)  # a rate per page: one archive measures it
        rows.append({"pool": size, "what": f"peer: warcio + trafilatura.extract ({pages} pages, extraction only)",
                     "cores": 1,
                     "seconds": peer_s, "pages_per_s_core": pages / peer_s})
        runs = [(w, "fast") for w in workers]
        if str(size) in args.precise_sizes.split(","):
            runs.append((1, "precise"))
        for cores, tier in runs:
            config = tier_config(tier, work / f"run-{tier}.yaml")
            out = work / f"out-{size}-{cores}-{tier}"
            done = out / "chain_result.json"  # a run finished by an earlier, interrupted benchmark
            if args.resume and done.exists():
                r = json.loads(done.read_text())
            else:
                r = run_chain(archives, out, cores, config)
                done.write_text(json.dumps(r))
            per_stage = "; ".join(f"{n} {s.get('seconds', 0):.1f}s {s.get('bytes', 0) / 1e6:.1f}MB "
                                  f"{s.get('peak_rss_mib', 0):.0f}MiB" for n, s in r["stages"].items())
            rate = size / r["seconds"] / cores
            what = "two tiers (default)" if tier == "fast" else "one tier (--tier precise)"
            rows.append({"pool": size, "what": f"ours: pipeline.run, {what}; {distinct} distinct pages", "cores": cores,
                         "seconds": r["seconds"], "pages_per_s_core": rate,
                         "extract_pages_per_s_core": (r["stages"]["extract"].get("pages_per_s") or 0) / cores,
                         "peak_rss_mib": r["peak_rss_mib"],
                         "snapshot_core_hours": SNAPSHOT_PAGES / rate / 3600, "stages": per_stage,
                         **{f"{n} rss_mib": st.get("peak_rss_mib") for n, st in r["stages"].items()}})
    work.mkdir(parents=True, exist_ok=True)
    (work / "results.json").write_text(json.dumps(rows, indent=1))
    print_tables(rows, work, sizes, workers)


def _table(rows: list[dict], cols: list[str]) -> None:
    fmt = lambda v: "-" if v is None else (f"{v:,.1f}" if isinstance(v, float) else str(v))
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c)) for c in cols) + " |")


def stage_seconds(out: Path) -> dict[str, float]:
    """Seconds of each stage of a finished run folder (its ``summary.json`` ``timing``)."""
    return {name: json.loads((out / name / "summary.json").read_text()).get("timing", {}).get("seconds", 0.0)
            for name in STAGES}


def marginal_rows(work: Path, sizes: list[int], workers: list[int]) -> list[dict]:
    """The cost of one more page, between the two largest pools of each worker count: the
    difference of stage seconds over the difference of pages, so the fixed costs of a run (job
    start-up, the rounds' classifier training on the seed) drop out. This is the rate that
    extrapolates to a snapshot."""
    rows = []
    for w in workers:
        done = [n for n in sorted(sizes) if (work / f"out-{n}-{w}-fast" / "corpus" / "summary.json").exists()]
        if len(done) < 2:
            continue
        small, large = done[-2], done[-1]
        a, b = stage_seconds(work / f"out-{small}-{w}-fast"), stage_seconds(work / f"out-{large}-{w}-fast")
        extra = large - small
        row = {"pools": f"{small} -> {large}", "cores": w}
        for name in STAGES:
            delta = b[name] - a[name]
            row[f"{name} pages/s/core"] = extra / delta / w if delta > 0 else None
        total = sum(b.values()) - sum(a.values())
        row["chain pages/s/core"] = extra / total / w
        row["snapshot_core_hours"] = SNAPSHOT_PAGES / (extra / total / w) / 3600
        rows.append(row)
    return rows


def print_tables(rows: list[dict], work: Path, sizes: list[int], workers: list[int]) -> None:
    _table(rows, ["pool", "what", "cores", "seconds", "pages_per_s_core", "extract_pages_per_s_core", "peak_rss_mib",
                  "snapshot_core_hours", "stages"])
    ours = [r for r in rows if r.get("extract rss_mib") is not None]
    if ours:
        print("\nPeak RSS per stage (MiB; each stage its own process):\n")
        _table(ours, ["pool", "cores", "what", *(f"{n} rss_mib" for n in STAGES)])
    marginal = marginal_rows(work, sizes, workers)
    if marginal:
        print("\nMarginal cost (one more page; fixed costs of a run removed):\n")
        _table(marginal, ["pools", "cores", *(f"{n} pages/s/core" for n in STAGES), "chain pages/s/core",
                          "snapshot_core_hours"])


if __name__ == "__main__":
    main()
