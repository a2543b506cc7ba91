"""A small recall pool for the sample run, tests and benchmarks: ``python -m pipeline.rounds.sample_pool --output DIR``.

A real pool is the dedup stage's output (``DOCUMENT_SCHEMA`` + ``dup_count`` Parquet). This
builds the same rows in-process from archives and labelled HTML pages, through the extract
stage's own pieces (``read_archive``, ``decode_payload``, ``extract_main_text``,
``document_row``) but without its Beam job, sandbox and language identification (``lang`` is
``"unknown"``), so a pool of ~100 pages takes seconds instead of a minute. Use it only where a
real extract -> dedup run is too slow.

Inputs: WARC/ARC/WET globs (default: the bundled ``data/sample/warc/*``), and optionally
labelled HTML pages from ``shared/data/html/pages.jsonl`` (``html_pages``), whose URL is the
page's own or, when unknown, its upstream GitHub URL (as ``data/build_sample.py`` does).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.extract.decode import decode_payload
from pipeline.extract.html_math import extract_main_text
from pipeline.extract.math_renderer import loads_math_renderer
from pipeline.extract.transforms import ExtractedPage, document_row
from pipeline.extract.warc_reader import PageRecord, read_archive
from pipeline.paths import SAMPLE_WARC_GLOB
from pipeline.schema import DOCUMENT_SCHEMA


def _row(record: PageRecord, html: str) -> dict | None:
    extracted = extract_main_text(html, url=record.url) if record.source_format == "html" else None
    text = extracted.text if extracted else html
    if not text.strip():
        return None
    page = ExtractedPage(record=record, text=text, title=extracted.title if extracted else None,
                         num_formulas=extracted.num_formulas if extracted else 0,
                         math_renderer=record.source_format == "html" and loads_math_renderer(html))
    return document_row(page, "unknown", 0.0)


def rows_from_archives(patterns: Iterable[str]) -> Iterator[dict]:
    """``DOCUMENT_SCHEMA`` rows of every page with a non-empty main text in the archives."""
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            for record in read_archive(path):
                if not isinstance(record, PageRecord):
                    continue
                try:
                    decoded = decode_payload(record.payload, record.content_type,
                                             is_html=record.source_format == "html")
                except Exception:  # noqa: BLE001, S112 - an undecodable page is simply not in the sample pool
                    continue
                row = _row(record, decoded.text)
                if row is not None:
                    yield row


def rows_from_labelled_pages(shared_data: Path, labels: Iterable[str] = ("math", "nonmath")) -> Iterator[tuple[str, dict]]:
    """``(label, row)`` for the labelled HTML pages of the shared test data."""
    wanted = set(labels)
    with open(shared_data / "html" / "pages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            page = json.loads(line)
            if page["label"] not in wanted:
                continue
            url = page["url"] or f"https://github.com/{page['source_repo']}/blob/{page['source_commit']}/{page['source_path']}"
            html = (shared_data / page["file"]).read_bytes().decode("utf-8", "replace")
            record = PageRecord(warc_path=page["file"], warc_offset=0, url=url, fetch_time=None,
                                source_format="html", content_type="text/html", payload=b"")
            row = _row(record, html)
            if row is not None:
                yield page["label"], row


def write_pool(rows: Iterable[dict], output_dir: str, name: str = "part-00000-of-00001.parquet") -> str:
    """Write rows as one ``DOCUMENT_SCHEMA`` Parquet file in ``output_dir``; returns its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, name)
    table = pa.Table.from_pylist([{k: r.get(k) for k in DOCUMENT_SCHEMA.names} for r in rows], schema=DOCUMENT_SCHEMA)
    pq.write_table(table, path, compression="zstd")
    return path


def build_sample_pool(output_dir: str | os.PathLike, patterns: Iterable[str] = (SAMPLE_WARC_GLOB,)) -> str:
    """The sample pool in ``output_dir`` (built on first use, reused after); returns the folder."""
    output_dir = str(output_dir)
    if not os.path.exists(os.path.join(output_dir, "part-00000-of-00001.parquet")):
        tmp = output_dir + ".tmp"
        write_pool(rows_from_archives(patterns), tmp)
        os.replace(tmp, output_dir)
    return output_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.rounds.sample_pool", description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, help="folder for the pool Parquet")
    parser.add_argument("--input", action="extend", nargs="+", help=f"archive globs (several, or repeated); default {SAMPLE_WARC_GLOB}")
    args = parser.parse_args(argv)
    path = write_pool(rows_from_archives(args.input or [SAMPLE_WARC_GLOB]), args.output)
    print(f"{pq.ParquetFile(path).metadata.num_rows} pages -> {path}")


if __name__ == "__main__":
    main()
