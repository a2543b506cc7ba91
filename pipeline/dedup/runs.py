"""Sorted run files: how the file exchange of the dedup stage moves per-page records between steps.

A *run* is one file of records (tuples) in ascending order, written as a sequence of
zlib-compressed pickled chunks of at most ``CHUNK_BYTES`` each. ``PartitionedRunWriter``
buffers records up to a byte budget, then sorts them and writes one run per partition;
``merge_runs`` streams the records of many runs in one sorted order (``heapq.merge``, with a
cascade through intermediate runs when there are more than ``FAN_IN``). A reader holds one
chunk per open run, so a merge of any size holds at most ``FAN_IN`` chunks, and a writer holds
its budget: memory is bounded by these constants, never by the number of records.

Files are written under a temporary name and renamed when complete, so a retried worker
(Dataflow, Spark) never leaves half a run behind; runs are named by what wrote them, so a
retry overwrites its own runs with the same content. Paths are any Beam filesystem (local,
``gs://``, ``s3://``). These files are the stage's own scratch data: pickle is used because
nothing else reads them, and they are deleted when the stage completes.
"""
from __future__ import annotations

import heapq
import os
import pickle
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator

from apache_beam.io.filesystems import FileSystems

from pipeline.beam_utils import join as _join

CHUNK_BYTES = 256 * 1024  # records per pickled chunk: one chunk per open run is held while merging
FAN_IN = 128  # runs merged at once; more are merged in a cascade through intermediate runs
BUFFER_BYTES = 32 * 1024 * 1024  # records a writer holds before it sorts them and spills a run
RUN_SUFFIX = ".run"


def record_bytes(record: tuple) -> int:
    """A cheap estimate of the memory a record's payload takes (strings and bytes, plus overhead)."""
    return 64 + sum(len(x) for x in record if isinstance(x, (str, bytes)))


def write_run(path: str, records: Iterable[tuple]) -> int:
    """Writes ``records`` (already in order) as one run at ``path``, atomically; returns their number."""
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    n = 0
    with FileSystems.create(tmp) as fh:
        chunk: list[tuple] = []
        size = 0
        for record in records:
            chunk.append(record)
            size += record_bytes(record)
            n += 1
            if size >= CHUNK_BYTES:
                _write_chunk(fh, chunk)
                chunk, size = [], 0
        if chunk:
            _write_chunk(fh, chunk)
    FileSystems.rename([tmp], [path])
    return n


def _write_chunk(fh, chunk: list[tuple]) -> None:
    data = zlib.compress(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL), 1)
    fh.write(len(data).to_bytes(8, "little"))
    fh.write(data)


def read_run(path: str) -> Iterator[tuple]:
    """The records of one run, in their stored order, one chunk in memory at a time."""
    with FileSystems.open(path) as fh:
        while True:
            head = fh.read(8)
            if not head:
                return
            if len(head) != 8:
                raise OSError(f"truncated run file {path}")
            length = int.from_bytes(head, "little")
            data = fh.read(length)
            if len(data) != length:
                raise OSError(f"truncated run file {path}")
            yield from pickle.loads(zlib.decompress(data))


def list_runs(folder: str) -> list[str]:
    """The complete runs directly in ``folder`` (none when it does not exist), sorted by path."""
    try:
        matches = FileSystems.match([_join(folder, "*" + RUN_SUFFIX)])[0].metadata_list
    except Exception:  # noqa: BLE001 - a folder that was never written holds no runs
        return []
    return sorted(m.path for m in matches)


def merge_runs(paths: list[str], scratch: str | None = None) -> Iterator[tuple]:
    """The records of all ``paths`` (each a run) in ascending order.

    With more than ``FAN_IN`` runs, groups of ``FAN_IN`` are first merged into intermediate
    runs under ``scratch`` (required then; deleted after use), so no more than ``FAN_IN``
    files are ever open at once.
    """
    paths = list(paths)
    made: list[str] = []
    level = 0
    while len(paths) > FAN_IN:
        if scratch is None:
            raise ValueError(f"merging {len(paths)} runs needs a scratch folder")
        grouped = []
        for g in range(0, len(paths), FAN_IN):
            out = _join(scratch, f"cascade-{level:02d}-{g // FAN_IN:06d}-{uuid.uuid4().hex[:8]}{RUN_SUFFIX}")
            write_run(out, heapq.merge(*(read_run(p) for p in paths[g:g + FAN_IN])))
            grouped.append(out)
        made += grouped
        paths = grouped
        level += 1
    try:
        yield from heapq.merge(*(read_run(p) for p in paths))
    finally:
        if made:
            FileSystems.delete(made)


class PartitionedRunWriter:
    """Collects records, each for one partition, and writes them as sorted runs.

    ``folder_of(partition)`` is the folder of a partition's runs and ``name`` names this writer
    (the same for a retry of the same work); every ``BUFFER_BYTES`` of records, the buffer is
    sorted and one run per partition present is written as ``<name>-<spill>.run``. Call
    ``close()`` to write the rest; it returns the number of records written.
    """

    def __init__(self, folder_of: Callable[[int], str], name: str, buffer_bytes: int | None = None):
        self.folder_of = folder_of
        self.name = name
        self.buffer_bytes = BUFFER_BYTES if buffer_bytes is None else buffer_bytes
        self._buffer: list[tuple[int, tuple]] = []
        self._size = 0
        self._spill = 0
        self.written = 0

    def add(self, partition: int, record: tuple) -> None:
        self._buffer.append((partition, record))
        self._size += record_bytes(record)
        if self._size >= self.buffer_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        start = 0
        while start < len(self._buffer):
            part = self._buffer[start][0]
            end = start
            while end < len(self._buffer) and self._buffer[end][0] == part:
                end += 1
            path = _join(self.folder_of(part), f"{self.name}-{self._spill:05d}{RUN_SUFFIX}")
            self.written += write_run(path, (r for _, r in self._buffer[start:end]))
            start = end
        self._buffer, self._size = [], 0
        self._spill += 1

    def close(self) -> int:
        self._flush()
        return self.written


def partition_of(key: str, partitions: int) -> int:
    """The partition of a string key among ``partitions`` (stable across processes and runs)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % max(1, partitions)
