"""The Beam shell of the stage: the ``Decontaminate`` composite transform.

``Decontaminate(index_path)`` takes document rows (dicts, any columns, ``text`` and ``id``/``url``
used) and returns a ``DecontaminateOutputs`` of three PCollections:

- ``clean``: the rows without benchmark text, unchanged (every column kept);
- ``contaminated``: audit rows (``CONTAMINATION_SCHEMA``), one per benchmark text found in a
  removed page (at most ``audit_texts_per_page`` per page, the first ones in page order);
- ``rejects``: ``REJECT_SCHEMA`` rows for inputs that could not be checked (``text`` not a
  string, or an unexpected error on that row); they are neither kept nor silently lost.

The index file is read once per worker process in ``DoFn.setup`` through
``apache_beam.utils.shared.Shared`` (all DoFn instances and threads of a process share one
copy), never per element. Beam counters in namespace ``decontaminate``: ``pages_in``,
``pages_kept``, ``pages_contaminated``, ``pages_empty_text`` (kept: nothing to leak),
``contaminated_<benchmark>`` (pages matching that benchmark), ``rejected_<reason>``,
``hash_collisions`` (hash hits whose tokens differed; expected 0).
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import Metrics
from apache_beam.utils.shared import Shared

from pipeline.decontaminate.index import BenchmarkIndex
from pipeline.decontaminate.normalize import tokenize
from pipeline.schema import make_reject

STAGE = "decontaminate"
NAMESPACE = "decontaminate"

CONTAMINATION_SCHEMA = pa.schema(
    [
        pa.field("page_id", pa.string()),  # `id` of the removed page
        pa.field("url", pa.string()),
        pa.field("benchmark", pa.string()),  # e.g. gsm8k, math, cmath
        pa.field("item_id", pa.string()),  # the benchmark item (MATH unique_id, else "<name>:<row>")
        pa.field("field", pa.string()),  # the item's text that matched (question, solution, question+options)
        pa.field("match_kind", pa.string()),  # "ngram" (n-gram of a long text) or "exact" (whole short text)
        pa.field("matched_ngram", pa.string()),  # first matching window, normalised tokens
        pa.field("matched_windows", pa.int32()),  # page windows matching this text
        pa.field("page_texts_matched", pa.int32()),  # benchmark texts found in the page in total
    ]
)


class DecontaminateOutputs(NamedTuple):
    clean: beam.PCollection
    contaminated: beam.PCollection
    rejects: beam.PCollection


class _FindBenchmarkText(beam.DoFn):
    """Routes each row to clean / contaminated audit rows / rejects (see the module docstring)."""

    CONTAMINATED = "contaminated"
    REJECTS = "rejects"

    def __init__(self, index_path: str, index_tag: str, shared: Shared, audit_texts_per_page: int, source: str = ""):
        self._index_path = index_path
        self._index_tag = index_tag
        self._shared = shared
        self._audit_limit = audit_texts_per_page
        self._source = source
        self._index: BenchmarkIndex | None = None

    def setup(self) -> None:
        path = self._index_path
        self._index = self._shared.acquire(lambda: BenchmarkIndex.load(path), tag=self._index_tag)

    def _count(self, name: str, value: int = 1) -> None:
        Metrics.counter(NAMESPACE, name).inc(value)

    def _reject(self, row, reason: str, detail: str):
        self._count(f"rejected_{reason}")
        url = row.get("url") if isinstance(row, dict) else None
        return beam.pvalue.TaggedOutput(self.REJECTS, make_reject(STAGE, self._source, -1, url, reason, detail))

    def process(self, row):
        self._count("pages_in")
        if not isinstance(row, dict):
            yield self._reject({}, "bad_row", f"expected a dict row, got {type(row).__name__}")
            return
        text = row.get("text")
        if text is None or text == "":
            self._count("pages_empty_text")
            self._count("pages_kept")
            yield row
            return
        if not isinstance(text, str):
            yield self._reject(row, "bad_text_type", f"text is {type(text).__name__}, not str (id={row.get('id')})")
            return
        index = self._index
        try:
            before = index.collisions
            matches = index.find(tokenize(text))
            if index.collisions != before:
                self._count("hash_collisions", index.collisions - before)
        except Exception as exc:  # noqa: BLE001 - a bad row must not fail the job: counted, written out
            yield self._reject(row, "decontaminate_error", f"{type(exc).__name__}: {exc} (id={row.get('id')})")
            return
        if not matches:
            self._count("pages_kept")
            yield row
            return
        self._count("pages_contaminated")
        for benchmark in sorted({m.benchmark for m in matches}):
            self._count(f"contaminated_{benchmark}")
        for m in matches[: self._audit_limit]:
            yield beam.pvalue.TaggedOutput(
                self.CONTAMINATED,
                {
                    "page_id": row.get("id"),
                    "url": row.get("url"),
                    "benchmark": m.benchmark,
                    "item_id": m.item_id,
                    "field": m.field,
                    "match_kind": m.kind,
                    "matched_ngram": m.matched,
                    "matched_windows": m.windows,
                    "page_texts_matched": len(matches),
                },
            )


class Decontaminate(beam.PTransform):
    """Remove pages containing benchmark text; see the module docstring for outputs and counters.

    ``index_tag`` identifies the index content (e.g. its path plus digest): processes that
    already hold an index under that tag reuse it.
    """

    def __init__(self, index_path: str, index_tag: str | None = None, audit_texts_per_page: int = 20, source: str = ""):
        super().__init__()
        if audit_texts_per_page < 1:
            raise ValueError("audit_texts_per_page must be >= 1")
        self._index_path = index_path
        self._index_tag = index_tag or index_path
        self._audit_limit = audit_texts_per_page
        self._source = source
        self._shared = Shared()

    def expand(self, rows):
        results = rows | "FindBenchmarkText" >> beam.ParDo(
            _FindBenchmarkText(self._index_path, self._index_tag, self._shared, self._audit_limit, self._source)
        ).with_outputs(_FindBenchmarkText.CONTAMINATED, _FindBenchmarkText.REJECTS, main="clean")
        return DecontaminateOutputs(
            results.clean, results[_FindBenchmarkText.CONTAMINATED], results[_FindBenchmarkText.REJECTS]
        )
