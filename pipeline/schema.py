"""The Parquet schemas at the pipeline's stage boundaries.

Every stage reads and writes rows of one shape: the extract stage's ``DOCUMENT_SCHEMA``, to
which later stages append their own columns (``dup_count`` after dedup, ``math_score`` after
scoring, ``recall_round`` after the recall rounds, ``num_tokens`` in the final corpus). Rows
travel between Beam transforms as plain ``dict``s with exactly these keys; a stage never
mutates a row in place, it returns a new dict.

Rejected inputs (records that could not be read, decoded or extracted, and pages a filter
removed for a reason that must be audited) go to ``REJECT_SCHEMA`` rows in each stage's
``rejects/`` folder.
"""
from __future__ import annotations

import pyarrow as pa

DOCUMENT_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),  # sha1 hex of url + "\n" + text: stable, content-addressed
    pa.field("url", pa.string()),  # target URI of the WARC record
    pa.field("domain", pa.string()),  # lower-cased host without "www." and port
    pa.field("fetch_time", pa.string()),  # WARC-Date, ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ"
    pa.field("warc_path", pa.string()),  # archive file the record came from
    pa.field("warc_offset", pa.int64()),  # byte offset of the record in warc_path (of the gzip member)
    pa.field("source_format", pa.string()),  # "html" (WARC/ARC response) or "text" (WET conversion)
    pa.field("title", pa.string()),
    pa.field("lang", pa.string()),  # ISO 639-1 code from fastText LID (lid.176), "unknown" if none
    pa.field("lang_score", pa.float32()),
    pa.field("text", pa.string()),  # main text; formulas as $...$ / $$...$$ in place
    pa.field("num_chars", pa.int64()),
    pa.field("num_formulas", pa.int32()),
    pa.field("math_renderer", pa.bool_()),  # the page loads MathJax/KaTeX (``math_renderer.loads_math_renderer``)
]
DOCUMENT_SCHEMA = pa.schema(DOCUMENT_FIELDS)

# Columns that later stages append, in the order they are appended.
DUP_COUNT = pa.field("dup_count", pa.int64())  # size of the duplicate cluster the kept page stands for
MATH_SCORE = pa.field("math_score", pa.float32())  # fastText probability of the math label
RECALL_ROUND = pa.field("recall_round", pa.int32())  # first recall round that recalled the page
NUM_TOKENS = pa.field("num_tokens", pa.int64())  # tokens of `text` under the configured tokenizer

REJECT_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string()),  # extract, dedup, score, decontaminate, ...
        pa.field("file", pa.string()),  # input file (WARC or Parquet) the record came from
        pa.field("offset", pa.int64()),  # byte offset in `file`, -1 when unknown
        pa.field("url", pa.string()),
        pa.field("reason", pa.string()),  # short machine-readable reason, also a Beam counter name
        pa.field("detail", pa.string()),  # human-readable detail (exception text, truncated)
    ]
)


def schema_with(base: pa.Schema, *extra: pa.Field) -> pa.Schema:
    """``base`` with ``extra`` fields appended; fields already present are not duplicated."""
    names = set(base.names)
    fields = list(base) + [f for f in extra if f.name not in names]
    return pa.schema(fields)


def conform(row: dict, schema: pa.Schema) -> dict:
    """A copy of ``row`` holding exactly the schema's columns (missing ones as None)."""
    return {name: row.get(name) for name in schema.names}


def make_reject(stage: str, file: str, offset: int, url: str | None, reason: str, detail: str = "") -> dict:
    """One ``REJECT_SCHEMA`` row; ``detail`` is truncated to 500 characters."""
    return {
        "stage": stage,
        "file": file,
        "offset": int(offset) if offset is not None else -1,
        "url": url,
        "reason": reason,
        "detail": (detail or "")[:500],
    }
