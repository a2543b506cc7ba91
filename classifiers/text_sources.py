"""Reading the ``text`` column of Parquet and JSON-lines files, and sampling from them in bounded memory.

Sources are files or globs (local, ``gs://``, ``s3://``: anything Beam's ``FileSystems``
reads); a folder stands for the Parquet and JSON-lines files in it, a stage folder (``out/dedup``)
for its pages in ``data/``. JSON lines may be
compressed (``.gz``, ``.bz2``, ``.zst``, detected from the name).

``sample_texts`` draws a uniform sample of exactly ``k`` rows (or all rows when there are
fewer) without ever holding more than the ``k`` chosen row *numbers* in memory: a first pass
counts the rows (Parquet footers only, or a line count for JSON lines), ``k`` row numbers are
drawn without replacement, and a second pass streams the rows and yields the chosen ones.
This replaces the reservoir sampling one would use on a stream: a reservoir must hold the
``k`` texts themselves (500K web pages are several GB), the two-pass draw holds 500K ints.
Rows whose ``text`` is missing, not a string or unreadable JSON are skipped and counted.
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TEXT_FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.bz2", ".jsonl.zst")
_BATCH_ROWS = 1024


class SourceError(ValueError):
    """A text source that does not exist or has an unsupported format."""


@dataclass
class ReadStats:
    """What a pass over text sources read: files opened, rows taken (all rows, or the rows drawn
    by a sample), rows used, and rows skipped by reason."""

    files: int = 0
    rows: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def to_dict(self) -> dict:
        return {"files": self.files, "rows": self.rows, "used": self.used, "skipped": dict(self.skipped)}


def _is_parquet(path: str) -> bool:
    return path.endswith(".parquet")


def _is_text_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not name.startswith((".", "_")) and name.endswith(TEXT_FILE_SUFFIXES)


def expand_sources(patterns: str | Sequence[str]) -> list[str]:
    """The files that ``patterns`` (files, globs or folders) stand for, sorted, each once.

    Raises ``SourceError`` when a pattern matches no Parquet or JSON-lines file: an empty
    training source is a configuration mistake, not something to skip silently.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    files: list[str] = []
    for pattern in patterns:
        candidates = [pattern]
        if not any(ch in pattern for ch in "*?[") and not pattern.endswith(TEXT_FILE_SUFFIXES):
            # a folder: a stage folder's pages (<folder>/data/), else the files in it
            candidates = [FileSystems.join(pattern, "data", "*"), FileSystems.join(pattern, "*")]
        matched = []
        for candidate in candidates:
            matched = [m.path for m in FileSystems.match([candidate])[0].metadata_list if _is_text_file(m.path)]
            if matched:
                break
        if not matched:
            raise SourceError(f"no Parquet or JSON-lines file matches {pattern!r}")
        files.extend(sorted(matched))
    return list(dict.fromkeys(files))


def _open(path: str, compressed: bool):
    compression = CompressionTypes.AUTO if compressed else CompressionTypes.UNCOMPRESSED
    return FileSystems.open(path, compression_type=compression)


def _lines(fh) -> Iterator[bytes]:
    """Lines of a Beam file object (its compressed readers are not iterable)."""
    return iter(fh.readline, b"")


def count_rows(files: Sequence[str]) -> int:
    """Number of rows in ``files``: Parquet from the footer, JSON lines by counting non-empty lines."""
    total = 0
    for path in files:
        if _is_parquet(path):
            with _open(path, compressed=False) as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        else:
            with _open(path, compressed=True) as fh:
                total += sum(1 for line in _lines(fh) if line.strip())
    return total


def _iter_file_texts(path: str) -> Iterator[tuple[str | None, str]]:
    """Every row of ``path`` in file order as ``(text, "")``, or ``(None, reason)`` when the row
    has no usable text."""
    if _is_parquet(path):
        with _open(path, compressed=False) as fh:
            parquet = pq.ParquetFile(fh)
            if "text" not in parquet.schema_arrow.names:
                raise SourceError(f"{path}: no 'text' column (columns: {parquet.schema_arrow.names})")
            for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=["text"]):
                for text in batch.column(0).to_pylist():
                    if not isinstance(text, str) or not text.strip():
                        yield None, "missing_text"
                    else:
                        yield text, ""
        return
    with _open(path, compressed=True) as fh:
        for line in _lines(fh):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                yield None, "bad_json"
                continue
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                yield None, "missing_text"
            else:
                yield text, ""


def _take(text: str | None, reason: str, stats: ReadStats) -> bool:
    stats.rows += 1
    if text is None:
        stats.skip(reason)
        return False
    stats.used += 1
    return True


def iter_texts(files: Sequence[str], stats: ReadStats | None = None) -> Iterator[str]:
    """Stream every usable text of ``files`` in order; unusable rows are counted in ``stats``."""
    stats = stats if stats is not None else ReadStats()
    for path in files:
        stats.files += 1
        for text, reason in _iter_file_texts(path):
            if _take(text, reason, stats):
                yield text


def sample_texts(files: Sequence[str], k: int | None, seed: int = 0, stats: ReadStats | None = None) -> Iterator[str]:
    """A uniform sample without replacement of ``k`` rows of ``files`` (all rows when ``k`` is
    None or at least the row count), yielded in file order; memory O(k) integers.

    Rows drawn whose text is unusable are skipped (counted in ``stats``), so slightly fewer
    than ``k`` texts may come out of a source with bad rows.
    """
    stats = stats if stats is not None else ReadStats()
    if k is not None and k <= 0:
        return
    total = count_rows(files)
    if k is None or k >= total:
        yield from iter_texts(files, stats)
        return
    chosen = sorted(random.Random(seed).sample(range(total), k))
    position = 0  # index into chosen
    row = 0
    for path in files:
        stats.files += 1
        for text, reason in _iter_file_texts(path):
            if row == chosen[position]:
                position += 1
                if _take(text, reason, stats):
                    yield text
                if position == len(chosen):
                    return
            row += 1
