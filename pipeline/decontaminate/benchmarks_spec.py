"""Which benchmark texts are indexed: the bundled defaults and user-given field mappings.

Defaults (the paper's benchmarks, read from the test splits bundled in ``data/benchmarks``):

=================  ===========================================  ======================
name               texts indexed                                 item id
=================  ===========================================  ======================
gsm8k              ``question``; ``answer``                      ``gsm8k:<row>``
math               ``problem``; ``solution``                     ``unique_id``
cmath              ``question``                                  ``cmath:<row>``
gaokao_mathqa      ``question`` + ``options`` (one text)         ``gaokao_mathqa:<row>``
gaokao_mathcloze   ``question``                                  ``gaokao_mathcloze:<row>``
=================  ===========================================  ======================

Answers that are only a number or a letter (CMATH ``golden``, Gaokao ``label``/``answer``)
are not indexed: they are shorter than the 3-token minimum and would match everywhere. A
Gaokao multiple-choice stem is indexed together with its options because many stems alone
are generic (``若a>b，则``).

A spec string is one of:

- ``default``: all bundled benchmarks above;
- a bundled name, e.g. ``gsm8k``;
- ``name=path:fields[:id_field]`` for any JSONL (optionally ``.gz``) or Parquet file on any
  Beam filesystem: ``fields`` is a comma-separated list of texts to index, each one field or
  several joined with ``+`` into one text (``question+options``). List values are joined by
  newlines; null or missing values are skipped. Without ``id_field`` items are numbered by row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.paths import BENCHMARK_DIR


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark file and the fields whose text is indexed."""

    name: str
    path: str
    texts: tuple[tuple[str, ...], ...]  # each entry: the fields joined into one indexed text
    id_field: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(f"benchmark name {self.name!r}: use letters, digits, '_', '-', '.'")
        if not self.texts or not all(self.texts):
            raise ValueError(f"benchmark {self.name!r}: no fields to index")


@dataclass(frozen=True)
class BenchmarkText:
    """One text of one benchmark item, as read from the file (not yet normalised)."""

    benchmark: str
    item_id: str
    field: str  # the field name, or names joined by '+'
    text: str


def _bundled(name: str, rel: str, texts: tuple[tuple[str, ...], ...], id_field: str | None = None) -> BenchmarkSpec:
    return BenchmarkSpec(name, str(BENCHMARK_DIR / rel), texts, id_field)


BUNDLED: dict[str, BenchmarkSpec] = {
    s.name: s
    for s in (
        _bundled("gsm8k", "gsm8k/test.jsonl.gz", (("question",), ("answer",))),
        _bundled("math", "math/MATH_test.jsonl.gz", (("problem",), ("solution",)), "unique_id"),
        _bundled("cmath", "cmath/test.jsonl.gz", (("question",),)),
        _bundled("gaokao_mathqa", "agieval_gaokao/gaokao-mathqa.jsonl.gz", (("question", "options"),)),
        _bundled("gaokao_mathcloze", "agieval_gaokao/gaokao-mathcloze.jsonl.gz", (("question",),)),
    )
}

_SPEC = re.compile(
    r"^(?P<name>[^=]+)=(?P<path>.+?\.(?:jsonl|json|jsonl\.gz|json\.gz|parquet))"
    r":(?P<fields>[^:]+)(?::(?P<id>[^:]+))?$"
)


def parse_spec(spec: str) -> list[BenchmarkSpec]:
    """The benchmarks one spec string names (see the module docstring); raises ValueError if malformed."""
    spec = spec.strip()
    if spec == "default":
        return list(BUNDLED.values())
    if spec in BUNDLED:
        return [BUNDLED[spec]]
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(
            f"bad benchmark spec {spec!r}: expected 'default', one of {sorted(BUNDLED)}, "
            "or 'name=path.{jsonl,jsonl.gz,parquet}:field1,field2+field3[:id_field]'"
        )
    texts = tuple(tuple(f.strip() for f in group.split("+") if f.strip()) for group in m.group("fields").split(","))
    return [BenchmarkSpec(m.group("name").strip(), m.group("path"), texts, m.group("id"))]


def parse_specs(specs: list[str] | None) -> list[BenchmarkSpec]:
    """All benchmarks named by ``specs`` (``None`` or empty: the defaults); names must be unique."""
    out: list[BenchmarkSpec] = []
    for spec in specs or ["default"]:
        out.extend(parse_spec(spec))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"benchmark names given more than once: {dupes}")
    return out


def _value_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [_value_text(v) for v in value]
        return "\n".join(p for p in parts if p)
    return value if isinstance(value, str) else str(value)


def _rows(path: str) -> Iterator[dict]:
    from apache_beam.io.filesystems import FileSystems

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        with FileSystems.open(path, compression_type="uncompressed") as fh:
            yield from pq.read_table(fh).to_pylist()
        return
    with FileSystems.open(path) as fh:  # .gz is decompressed by Beam's compression auto-detection
        data = fh.read()  # benchmark files are small (a few MiB)
    for lineno, raw in enumerate(data.splitlines(), start=1):
        line = raw.decode("utf-8").strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise TypeError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        yield row


def read_texts(spec: BenchmarkSpec) -> Iterator[BenchmarkText]:
    """Every non-empty indexed text of one benchmark, in file order.

    Raises ValueError when the file names none of the spec's fields at all (a typo in the
    mapping), or an ``id_field`` is missing from a row: both would otherwise silently leave
    benchmark items out of the index.
    """
    fields_seen: set[str] = set()
    rows = 0
    for row_no, row in enumerate(_rows(spec.path)):
        rows += 1
        fields_seen.update(row)
        if spec.id_field:
            if row.get(spec.id_field) is None:
                raise ValueError(f"{spec.path}: row {row_no} has no id field {spec.id_field!r}")
            item_id = str(row[spec.id_field])
        else:
            item_id = f"{spec.name}:{row_no}"
        for group in spec.texts:
            parts = [_value_text(row.get(f)) for f in group]
            text = "\n".join(p for p in parts if p)
            if text.strip():
                yield BenchmarkText(spec.name, item_id, "+".join(group), text)
    missing = sorted({f for group in spec.texts for f in group} - fields_seen)
    if rows and missing:
        raise ValueError(f"benchmark {spec.name!r}: fields {missing} occur in no row of {spec.path}")
    if not rows:
        raise ValueError(f"benchmark {spec.name!r}: {spec.path} holds no rows")
