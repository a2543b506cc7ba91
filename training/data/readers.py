"""Lazy, deterministic, resumable reading of one source's documents for one data stream.

The training data is split into ``num_streams`` *data streams* (each DDP rank owns
``num_streams / world_size`` of them). Within a source, the unit of work is a *chunk*: one
Parquet row group, or one block of ``block_lines`` lines of a JSONL file. In every pass
(epoch) over a source, the source's files are visited in an order shuffled from
``(seed, source name, epoch)``, the chunks are numbered in that order, and stream ``s`` reads
chunk ``k`` exactly when ``k % num_streams == s``; inside a chunk the rows are read in an order
shuffled from ``(seed, source name, epoch, file, chunk)``. So:

- every document is read by exactly one stream per epoch, and the order depends only on the
  seed, never on timing or on the number of ranks;
- a source too small to give every stream whole chunks (fewer than ``4 * num_streams`` chunks,
  counted from Parquet footers or JSONL lines when that is cheap, see ``count_chunks``) is split
  by rows instead (``split="rows"``): every stream reads every chunk and keeps every
  ``num_streams``-th row of it;
- only the owned chunks are read (Parquet row groups are read one at a time, and only the text
  column); a JSONL file is decompressed sequentially by every stream, the lines of chunks owned
  by other streams are skipped without parsing;
- the position (epoch, file, chunk, rows consumed) is a few integers: ``state_dict()`` /
  ``load_state_dict()`` resume exactly, in the middle of a shard.

Bad input never stops a run silently or crashes it: an unreadable file, a file without the text
field, a malformed JSON line and an empty or non-string text are skipped and counted in
``skipped`` (by reason); a source that yields no document to a stream during a whole pass raises
a clear error instead of looping for ever.
"""
from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow.parquet as pq

from training.data.files import JSONL, PARQUET, detect_format, open_binary

log = logging.getLogger(__name__)


class SourceExhaustedError(RuntimeError):
    """A source gave a data stream no document during a whole pass over its files."""


class _BadRow:
    """A row that could not be read as a document; ``reason`` says why (a skip counter name)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process and Python version (CRC-32)."""
    return zlib.crc32(text.encode("utf-8"))


def epoch_file_order(num_files: int, seed: int, source_name: str, epoch: int) -> list[int]:
    """The order in which the files of a source are visited in ``epoch`` (same for every stream)."""
    rng = np.random.default_rng([seed, stable_hash(source_name), epoch])
    return [int(i) for i in rng.permutation(num_files)]


def chunk_row_order(num_rows: int, seed: int, source_name: str, epoch: int, file_index: int, chunk: int,
                    shuffle: bool = True) -> list[int]:
    """The order in which the rows of one chunk are read."""
    if not shuffle:
        return list(range(num_rows))
    rng = np.random.default_rng([seed, stable_hash(source_name), epoch, file_index, chunk])
    return [int(i) for i in rng.permutation(num_rows)]


SPLITS = ("auto", "chunks", "rows")
_COUNT_MAX_FILES = 64  # "auto" counts chunks only for sources this small ...
_COUNT_MAX_JSONL_BYTES = 64 * 2**20  # ... and JSONL files this small in total


def count_chunks(files: Sequence[str], formats: Sequence[str], block_lines: int) -> int | None:
    """Chunks in one pass over ``files`` when that is cheap to find out (Parquet footers, small
    JSONL files), else None."""
    import fsspec

    if len(files) > _COUNT_MAX_FILES:
        return None
    jsonl = [f for f, fmt in zip(files, formats) if fmt == JSONL]
    try:
        if jsonl and sum(fsspec.core.url_to_fs(f)[0].size(fsspec.core.url_to_fs(f)[1]) for f in jsonl) > \
                _COUNT_MAX_JSONL_BYTES:
            return None
        total = 0
        for path, fmt in zip(files, formats):
            if fmt == PARQUET:
                with open_binary(path) as fh:
                    total += pq.ParquetFile(fh).num_row_groups
            else:
                with open_binary(path, decompress=True) as fh:
                    total += -(-sum(1 for _ in fh) // block_lines)
        return total
    except Exception:  # noqa: BLE001 - unreadable files are skipped (and counted) when read
        return None


def choose_split(split: str, num_streams: int, chunks: int | None) -> str:
    """``chunks`` or ``rows`` for a source; ``auto`` picks rows when there are < 4 chunks per stream."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split != "auto":
        return split
    if num_streams > 1 and chunks is not None and chunks < 4 * num_streams:
        return "rows"
    return "chunks"


def owns_chunk(chunk_counter: int, stream: int, num_streams: int) -> bool:
    """Whether stream ``stream`` reads the ``chunk_counter``-th chunk of a pass."""
    return chunk_counter % num_streams == stream


def _text_of(value, text_field: str):
    if value is None:
        return _BadRow("empty_text")
    if not isinstance(value, str):
        return _BadRow("text_not_a_string")
    if not value.strip():
        return _BadRow("empty_text")
    return value


class DocumentReader:
    """The documents of one source that belong to one data stream, as an endless resumable sequence.

    ``files`` is the sorted file list of the source (see ``training.data.files``). Passes repeat
    for ever; ``epoch`` in the state counts them.
    """

    def __init__(self, name: str, files: Sequence[str], text_field: str = "text", fmt: str = "auto",
                 stream: int = 0, num_streams: int = 1, seed: int = 0, shuffle_rows: bool = True,
                 block_lines: int = 1024, split: str = "auto"):
        if not files:
            raise ValueError(f"source {name!r} has no files")
        if not 0 <= stream < num_streams:
            raise ValueError(f"stream {stream} is not in [0, {num_streams})")
        if block_lines < 1:
            raise ValueError("block_lines must be >= 1")
        self.name = name
        self.files = list(files)
        self.formats = [detect_format(f, fmt) for f in self.files]
        self.text_field = text_field
        self.stream = stream
        self.num_streams = num_streams
        self.seed = seed
        self.shuffle_rows = shuffle_rows
        self.block_lines = block_lines
        self.split = choose_split(split, num_streams,
                                  count_chunks(self.files, self.formats, block_lines)
                                  if split == "auto" and num_streams > 1 else None)
        self.skipped: dict[str, int] = {}
        self.documents_read = 0
        # Position of the chunk being read: epoch, index into the epoch's file order, chunk index
        # in that file, the pass-wide chunk counter of that chunk, and rows of it consumed.
        self._epoch = 0
        self._file_pos = 0
        self._chunk = 0
        self._counter = 0
        self._row = 0
        self._docs_this_epoch = 0
        self._rows: list | None = None  # the current chunk's rows, in reading order
        self._chunks: Iterator | None = None

    # -- position -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The reading position and counters (plain ints and strings)."""
        return {
            "name": self.name,
            "num_files": len(self.files),
            "split": self.split,
            "epoch": self._epoch,
            "file_pos": self._file_pos,
            "chunk": self._chunk,
            "counter": self._counter,
            "row": self._row,
            "docs_this_epoch": self._docs_this_epoch,
            "documents_read": self.documents_read,
            "skipped": dict(self.skipped),
            "has_chunk": self._rows is not None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where ``state`` was taken."""
        if state.get("split", self.split) != self.split:
            raise ValueError(f"source {self.name!r} was split by {state['split']} in the checkpoint but by {self.split} "
                             f"now (its files changed); set the source's split explicitly")
        if state["name"] != self.name or state["num_files"] != len(self.files):
            raise ValueError(
                f"data state for source {state['name']!r} with {state['num_files']} files does not fit source "
                f"{self.name!r} with {len(self.files)} files: the source's files changed since the checkpoint"
            )
        self._epoch = state["epoch"]
        self._file_pos = state["file_pos"]
        self._chunk = state["chunk"]
        self._counter = state["counter"]
        self._row = state["row"]
        self._docs_this_epoch = state["docs_this_epoch"]
        self.documents_read = state["documents_read"]
        self.skipped = dict(state["skipped"])
        self._rows = None
        self._chunks = None
        if state["has_chunk"]:
            row = self._row
            self._chunks = self._iter_chunks(self._epoch, self._file_pos, self._chunk, self._counter)
            self._load_next_chunk()
            self._row = row

    # -- reading ------------------------------------------------------------------------------
    def next_text(self) -> str:
        """The next document's text (never empty); skips and counts unreadable rows."""
        while True:
            if self._rows is None or self._row >= len(self._rows):
                self._load_next_chunk()
            value = self._rows[self._row]
            self._row += 1
            if isinstance(value, _BadRow):
                self.skipped[value.reason] = self.skipped.get(value.reason, 0) + 1
                continue
            self.documents_read += 1
            self._docs_this_epoch += 1
            return value

    def _skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        log.warning("source %s: %s (%s)", self.name, reason, detail)

    def _load_next_chunk(self) -> None:
        empty_passes = 0
        while True:
            if self._chunks is None:
                self._chunks = self._iter_chunks(self._epoch, 0, 0, 0)
            for file_pos, chunk, counter, rows, file_index in self._chunks:
                self._file_pos, self._chunk, self._counter = file_pos, chunk, counter
                order = chunk_row_order(len(rows), self.seed, self.name, self._epoch, file_index, chunk,
                                        self.shuffle_rows)
                if self.split == "rows":  # keep this stream's share of the chunk's rows
                    order = [i for n, i in enumerate(order) if (n + counter) % self.num_streams == self.stream]
                self._rows = [rows[i] for i in order]
                self._row = 0
                if self._rows:
                    return
            # End of a pass.
            if self._docs_this_epoch == 0:
                empty_passes += 1
                if empty_passes >= 1:
                    raise SourceExhaustedError(
                        f"source {self.name!r} gave data stream {self.stream} of {self.num_streams} no document in a "
                        f"whole pass over its {len(self.files)} files (skipped: {self.skipped}); it needs at least "
                        f"{self.num_streams} non-empty row groups / {self.block_lines}-line blocks: set the source's "
                        f"split to rows, write more, smaller shards, or lower data.block_lines or data.num_streams"
                    )
            self._epoch += 1
            self._docs_this_epoch = 0
            self._chunks = None

    def _iter_chunks(self, epoch: int, start_pos: int, start_chunk: int, start_counter: int):
        """Yield ``(file_pos, chunk, counter, rows, file_index)`` for this stream's chunks of one pass."""
        order = epoch_file_order(len(self.files), self.seed, self.name, epoch)
        counter = start_counter
        for file_pos in range(start_pos, len(order)):
            file_index = order[file_pos]
            path = self.files[file_index]
            first = start_chunk if file_pos == start_pos else 0
            reader = self._parquet_chunks if self.formats[file_index] == PARQUET else self._jsonl_chunks
            try:
                for chunk, load in reader(path, first):
                    if self.split == "rows" or owns_chunk(counter, self.stream, self.num_streams):
                        rows = load()
                        yield file_pos, chunk, counter, rows, file_index
                    counter += 1
            except SourceExhaustedError:
                raise
            except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped and counted
                self._skip("unreadable_file", f"{path}: {type(exc).__name__}: {exc}")

    def _parquet_chunks(self, path: str, first: int):
        with open_binary(path) as fh:
            parquet = pq.ParquetFile(fh)
            if self.text_field not in parquet.schema_arrow.names:
                self._skip("missing_text_field", f"{path} has no column {self.text_field!r}")
                return
            for group in range(first, parquet.num_row_groups):
                def load(group=group):
                    column = parquet.read_row_group(group, columns=[self.text_field]).column(0)
                    return [_text_of(v, self.text_field) for v in column.to_pylist()]

                yield group, load

    def _jsonl_chunks(self, path: str, first: int):
        with open_binary(path, decompress=True) as fh:
            block = 0
            while True:
                lines = []
                for line in fh:
                    lines.append(line)
                    if len(lines) == self.block_lines:
                        break
                if not lines:
                    return
                if block >= first:
                    yield block, lambda lines=lines: [self._parse_line(x) for x in lines]
                block += 1
                if len(lines) < self.block_lines:
                    return

    def _parse_line(self, line: bytes):
        if not line.strip():
            return _BadRow("blank_line")
        try:
            obj = json.loads(line)
        except ValueError:
            return _BadRow("bad_json")
        if not isinstance(obj, dict):
            return _BadRow("bad_json")
        if self.text_field not in obj:
            return _BadRow("missing_text_field")
        return _text_of(obj[self.text_field], self.text_field)
