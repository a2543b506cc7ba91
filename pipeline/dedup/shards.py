"""The dedup stage's passes over its input files: rows are read from the files three times and
never shuffled.

Only small per-page records cross a shuffle: the URL-dedup metadata (``read_metadata``), the
LSH band keys and shingle fingerprints (``MinHashFileFn``), and the per-page decisions. The
decisions are grouped by input file and each file is then streamed again with its own
decisions (``ApplyDecisionsFn``): a worker holds one file's decisions and one batch of rows,
whatever the size of the input, and no shuffle carries a page's text (as datatrove's MinHash
filter re-reads its input with the removed ids).

A page is addressed by its position: the file's key (a 64-bit hash of its path) and the row's
index in the file, so two rows with the same ``id`` stay two pages. The passes read each
file in the same order, so positions agree; a file that cannot be read is one reject
(``unreadable_parquet``) and the rows read before the error are used in every pass.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics

from pipeline.dedup.components import NAMESPACE
from pipeline.dedup.minhash import MinHashConfig, MinHasher, shingle_fingerprint, shingle_hashes
from pipeline.dedup.urls import fetch_rank
from pipeline.schema import make_reject

STAGE = "dedup"
READ_BATCH_ROWS = 512
META_COLUMNS = ["id", "url", "fetch_time", "warc_path", "warc_offset", "dup_count"]
MINHASH_COLUMNS = ["id", "text", "num_chars", "fetch_time", "dup_count"]
REJECTS = "rejects"

# Decision kinds, per (file, row): the row is a URL duplicate (dropped, its removal is recorded by
# the URL dedup), a URL winner standing for ``value`` pages, a near-duplicate of page ``value``
# (removed), or the root of a component that absorbs ``value`` more pages.
DROP, WEIGHT, NEAR, CREDIT = "drop", "weight", "near", "credit"


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


def file_key(path: str) -> str:
    """The key of an input file in page positions: 16 hex digits of a hash of its path."""
    return hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def row_weight(row: dict) -> int:
    """How many input pages a row stands for: its ``dup_count`` when present and >= 1, else 1."""
    w = row.get("dup_count")
    return int(w) if isinstance(w, int) and w >= 1 else 1


def valid_id(row: dict) -> bool:
    ident = row.get("id")
    return isinstance(ident, str) and bool(ident.strip())


def as_text(value) -> str:
    """A row's text as ``str`` (bytes decoded as UTF-8 with replacement; None -> "")."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def iter_rows(path: str, columns: list[str] | None) -> Iterator[tuple[int, dict]]:
    """``(row index, row)`` for the rows of one Parquet file, read in batches; ``columns``
    absent from the file are left out of the rows. Raises what pyarrow raises on a bad file."""
    with FileSystems.open(path) as fh:
        pf = pq.ParquetFile(fh)
        names = set(pf.schema_arrow.names)
        wanted = None if columns is None else [c for c in columns if c in names]
        index = 0
        for batch in pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=wanted):
            for row in batch.to_pylist():
                yield index, row
                index += 1


def _read(path: str | None, columns: list[str] | None) -> Iterator[tuple[int, dict]]:
    """``iter_rows`` that stops quietly at a read error (the metadata pass reports it)."""
    if path is None:
        return
    try:
        yield from iter_rows(path, columns)
    except Exception:  # noqa: BLE001 - reported once, by read_metadata
        return


# ----------------------------------------------------------------------- pass 1: metadata
class ReadMetadataFn(beam.DoFn):
    """``(file key, path)`` -> ``(URL group key, member)`` per valid row, where a member is
    ``(fetch rank, file key, row index, id, url, weight)``; rows without an id and unreadable
    files go to ``rejects``. Reads only the metadata columns (never the text)."""

    def __init__(self, url_group_key):
        self.url_group_key = url_group_key

    def process(self, element):
        key, path = element
        _count("input_files")
        try:
            for index, row in iter_rows(path, META_COLUMNS):
                if not valid_id(row):
                    _count("rejected:missing_id")
                    yield beam.pvalue.TaggedOutput(REJECTS, make_reject(
                        STAGE, row.get("warc_path") or path, row.get("warc_offset") or -1, row.get("url"),
                        "missing_id", f"row {index} of {path} has no id"))
                    continue
                _count("input_rows")
                yield (self.url_group_key(row),
                       (fetch_rank(row) + (key, index), key, index, row["id"], row.get("url"), row_weight(row)))
        except Exception as exc:  # noqa: BLE001 - a bad file is a recorded reject, never a failed job
            _count("rejected:unreadable_parquet")
            yield beam.pvalue.TaggedOutput(REJECTS, make_reject(STAGE, path, -1, None, "unreadable_parquet",
                                                                f"{type(exc).__name__}: {exc}"))


def decisions_by_row(decisions) -> dict[int, dict]:
    """``{row index: {kind: value}}`` of one file's ``(row index, kind, value)`` decisions."""
    out: dict[int, dict] = {}
    for index, kind, value in decisions:
        out.setdefault(index, {})[kind] = value
    return out


def file_and_decisions(grouped: dict) -> tuple[str | None, dict[int, dict]]:
    """The path and the per-row decisions of one file's ``CoGroupByKey`` result (no path: a
    decision for a file that is not an input, which cannot happen; nothing is read then)."""
    paths = list(grouped["path"])
    return (paths[0] if paths else None), decisions_by_row(grouped["decision"])


def rows_with_decisions(path: str | None, columns: list[str] | None, decided: dict[int, dict],
                        streamed: Iterator[tuple] = iter(())) -> Iterator[tuple[int, dict, dict]]:
    """``(row index, row, {kind: value})`` for each row of one file that has a valid id: its
    decisions from ``decided`` (held) and from ``streamed``, ``(row index, kind, value)`` in
    row order (the file exchange's runs, read beside the rows instead of held)."""
    pending = next(streamed, None)
    for index, row in _read(path, columns):
        decision = decided.get(index, {})
        while pending is not None and pending[0] <= index:
            if pending[0] == index:
                decision = {**decision, pending[1]: pending[2]}
            pending = next(streamed, None)
        if valid_id(row):
            yield index, row, decision


def streamed_decisions(folder_of, key: str) -> Iterator[tuple]:
    """A file's decisions from the file exchange's runs (``folder_of(file key)``), in row order;
    nothing when ``folder_of`` is None."""
    if folder_of is None:
        return iter(())
    from pipeline.dedup.runs import list_runs, merge_runs

    return iter(merge_runs(list_runs(folder_of(key)), folder_of(key + "-merge")))


# ------------------------------------------------------------------------ pass 2: MinHash
class MinHashFileFn(beam.DoFn):
    """``(file key, {"path": [path], "decision": URL decisions})`` -> ``(bucket key, node)`` for
    every band of every page that survived URL dedup and has shingles, ``(node, fingerprint)``
    tagged ``fingerprints``, and ``1`` tagged ``no_shingles`` for a page without shingles."""

    NO_SHINGLES = "no_shingles"
    FINGERPRINTS = "fingerprints"

    def __init__(self, config: MinHashConfig, keep: str, node_key, batch_size: int = 256, decision_runs=None):
        self.config, self.keep, self.node_key, self.batch_size = config, keep, node_key, batch_size
        self.decision_runs = decision_runs
        self.hasher = None

    def setup(self):
        self.hasher = MinHasher(self.config)

    def process(self, element):
        key, grouped = element
        path, decided = file_and_decisions(grouped)
        batch: list[tuple[str, str]] = []
        for index, row, decision in rows_with_decisions(path, MINHASH_COLUMNS, decided,
                                                        streamed_decisions(self.decision_runs, key)):
            if DROP in decision:
                continue
            weight = decision.get(WEIGHT, row_weight(row))
            text = as_text(row.get("text"))
            batch.append((self.node_key(row, self.keep, weight, key, index, text), text))
            if len(batch) >= self.batch_size:
                yield from self._emit(batch)
                batch = []
        if batch:
            yield from self._emit(batch)

    def _emit(self, batch):
        hashes = [shingle_hashes(text, self.config.shingle_size) for _, text in batch]
        sigs = self.hasher.signatures_from_hashes(hashes)
        _count("signatures", len(batch))
        for (node, _), h, sig in zip(batch, hashes, sigs):
            if not len(h):
                _count("near_dup_skipped:no_shingles")
                yield beam.pvalue.TaggedOutput(self.NO_SHINGLES, 1)
                continue
            yield beam.pvalue.TaggedOutput(self.FINGERPRINTS, (node, shingle_fingerprint(h, self.config.fingerprint_hashes)))
            for band in self.hasher.band_keys(sig):
                yield (band, node)


# ------------------------------------------------------------------- pass 3: apply decisions
class ApplyDecisionsFn(beam.DoFn):
    """``(file key, {"path": [path], "decision": all decisions})`` -> each kept row with
    ``dup_count`` (the pages it stands for), and (tagged ``removed``) a removal record for each
    near-duplicate; URL duplicates are dropped (the URL dedup recorded their removal).
    ``decision_runs(file key)``: the folder of the file's near-duplicate decisions when they are
    in runs (``file_exchange``), streamed beside the rows instead of held."""

    REMOVED = "removed"

    def __init__(self, removed_record, decision_runs=None):
        self.removed_record = removed_record
        self.decision_runs = decision_runs

    def process(self, element, *_ready):
        path, decided = file_and_decisions(element[1])
        for index, row, decision in rows_with_decisions(path, None, decided,
                                                        streamed_decisions(self.decision_runs, element[0])):
            if DROP in decision:
                continue
            if NEAR in decision:
                _count("removed:near_dup")
                yield beam.pvalue.TaggedOutput(self.REMOVED, self.removed_record(
                    row["id"], decision[NEAR], "near_dup", row.get("url")))
                continue
            _count("kept")
            weight = decision.get(WEIGHT, row_weight(row)) + decision.get(CREDIT, 0)
            yield {**row, "text": as_text(row.get("text")), "dup_count": weight}
