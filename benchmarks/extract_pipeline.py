"""Throughput of the whole extract stage (read -> decode -> extract -> langid -> Parquet) vs the
usual peer loop (warcio + plain ``trafilatura.extract``, as OpenWebMath's and datatrove's readers do),
on the same archives, in the same run.

    python benchmarks/extract_pipeline.py [--input GLOB ...] [--repeat 1]

Rows:
- ``peer: warcio + trafilatura.extract``: one process, no limits, no language id, no output;
- ``ours: read + decode only``: the robust reader and charset decoding alone (the I/O side);
- ``ours: Beam stage, 1 worker``: ``python -m pipeline.extract`` in-process (FnApiRunner), sandboxed
  extraction with its time limit, langid, Parquet, rejects and summary;
- ``ours: Beam stage, 2 threads``: the same with ``--direct_running_mode=multi_threading
  --direct_num_workers=2 --reshuffle_pages`` (pages/s/core divides by 2).

The extraction function itself (formula retention, precision/recall) is compared in
``benchmarks/extract.py``; this script measures what the pipeline around it costs.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.paths import SAMPLE_WARC_GLOB


def peer_loop(files: list[str]) -> tuple[int, int]:
    """warcio + trafilatura.extract over every HTTP-200 HTML response; returns (pages, pages with text)."""
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    pages = kept = 0
    broken_files: list[str] = []
    for path in files:
        with open(path, "rb") as fh:
            try:
                for record in ArchiveIterator(fh, arc2warc=True):
                    if record.rec_type != "response" or record.http_headers is None:
                        continue
                    ctype = (record.http_headers.get_header("Content-Type") or "").lower()
                    if record.http_headers.get_statuscode() != "200" or "html" not in ctype:
                        continue
                    html = record.content_stream().read().decode("utf-8", errors="replace")
                    pages += 1
                    kept += bool(trafilatura.extract(html))
            except Exception:  # noqa: BLE001 - the peer simply loses the rest of a broken file
                broken_files.append(path)
    return pages, kept


def reader_only(files: list[str]) -> tuple[int, int]:
    from pipeline.extract.decode import DecodeError, decode_payload
    from pipeline.extract.warc_reader import PageRecord, read_archive

    pages = decoded = 0
    for path in files:
        for item in read_archive(path):
            if isinstance(item, PageRecord):
                pages += 1
                try:
                    decode_payload(item.payload, item.content_type, is_html=item.source_format == "html")
                    decoded += 1
                except DecodeError:
                    pass
    return pages, decoded


def stage(files: list[str], extra: list[str]) -> tuple[int, int]:
    from pipeline.extract.pipeline import run

    with tempfile.TemporaryDirectory() as tmp:
        argv = [a for f in files for a in ("--input", f)] + ["--output", os.path.join(tmp, "out"), *extra]
        summary = run(argv)
    return summary["pages_read"], summary["pages_kept"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", action="append", help=f"archive glob (repeatable; default {SAMPLE_WARC_GLOB})")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best is reported")
    args = parser.parse_args()
    files = sorted({f for pattern in (args.input or [SAMPLE_WARC_GLOB]) for f in glob.glob(pattern)})
    if not files:
        raise SystemExit("no input files")
    total_mb = sum(os.path.getsize(f) for f in files) / 1e6
    # Import everything first: start-up imports are not throughput.
    import apache_beam  # noqa: F401
    import trafilatura  # noqa: F401

    import pipeline.extract.pipeline  # noqa: F401
    from pipeline.extract.decode import decode_payload

    decode_payload(b"<html>warm-up</html>", None)

    rows = [
        ("peer: warcio + trafilatura.extract", 1, lambda: peer_loop(files)),
        ("ours: read + decode only", 1, lambda: reader_only(files)),
        ("ours: Beam stage, 1 worker", 1, lambda: stage(files, [])),
        ("ours: Beam stage, 2 threads", 2, lambda: stage(files, ["--direct_running_mode=multi_threading",
                                                                 "--direct_num_workers=2", "--reshuffle_pages"])),
    ]
    def best_of(fn):
        best, result = None, None
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            result = fn()
            wall = time.perf_counter() - started
            best = wall if best is None else min(best, wall)
        return best, result

    print(f"{len(files)} files, {total_mb:.1f} MB, cpu count {os.cpu_count()}")
    print(f"{'what':46s} {'pages':>6s} {'kept':>6s} {'wall s':>8s} {'pages/s/core':>13s} {'MB/s':>7s} {'vs peer':>8s}")
    peer_rate = None
    measured = {}
    for name, cores, fn in rows:
        best, (pages, kept) = best_of(fn)
        measured[name] = (best, pages)
        rate = pages / best / cores
        peer_rate = peer_rate or rate
        print(f"{name:46s} {pages:6d} {kept:6d} {best:8.2f} {rate:13.2f} {total_mb / best:7.2f} {rate / peer_rate:7.2f}x")
    # Steady-state rate: the fixed cost of a job (pipeline and extractor-process start-up), measured
    # on the smallest archive, is subtracted; at Common Crawl scale it is paid once per worker.
    smallest = min(files, key=os.path.getsize)
    fixed, (fixed_pages, _) = best_of(lambda: stage([smallest], []))
    full, pages = measured["ours: Beam stage, 1 worker"]
    steady = (pages - fixed_pages) / max(full - fixed, 1e-9)
    print(f"{'ours: Beam stage, 1 worker, start-up excluded':46s} {pages - fixed_pages:6d} {'':>6s} {full - fixed:8.2f} "
          f"{steady:13.2f} {'':>7s} {steady / peer_rate:7.2f}x")
    print(f"(start-up measured on {os.path.basename(smallest)}: {fixed:.2f} s for {fixed_pages} page(s))")


if __name__ == "__main__":
    main()
