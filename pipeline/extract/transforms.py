"""The extract stage as one composite Beam transform: WARC/ARC/WET files -> page rows + rejects.

``ExtractText(patterns, config)`` reads like the recipe; every step is labelled:

    InputPatterns -> MatchFiles -> SpreadFiles (Reshuffle) -> ExactDuplicates -> ReadRecords -> Decode
        -> ExtractMainText -> IdentifyLanguage -> ToRows
    (ReadRecords, Decode, ExtractMainText each have a tagged ``rejects`` output) -> CollectRejects

It returns ``{"documents": PCollection[dict], "rejects": PCollection[dict]}`` with rows of
``pipeline.schema.DOCUMENT_SCHEMA`` and ``REJECT_SCHEMA``. The logic lives in pure functions and in
``warc_reader``/``decode``/``sandbox``; the DoFns here only count and route.

Accounting (checked by ``summary.json``): every HTTP-200 HTML response and WET conversion record
is counted once in ``pages_read`` and ends either as a row (``pages_kept``) or as a page-level
reject; other records are counted skips; file-level failures are rejects with ``offset`` where the
archive broke. Counter names: ``extract:<name>`` (see ``pipeline.extract.pipeline.make_summary``).

Departures from the paper: the paper gives no extraction details. Parallelism is per file (a Common
Crawl crawl has ~90,000 WARC files); ``reshuffle_pages`` also spreads the pages of few, large files.
"""
from __future__ import annotations

import hashlib
import re
import time
import traceback
from dataclasses import asdict, dataclass, replace

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.fileio import EmptyMatchTreatment
from apache_beam.metrics.metric import Metrics
from apache_beam.utils import shared

from pipeline.extract.decode import DecodeError, decode_payload
from pipeline.extract.exact_dups import KeepSets
from pipeline.extract.math_renderer import loads_math_renderer
from pipeline.extract.sandbox import ExtractionError, SandboxConfig, SandboxPool, shared_pool
from pipeline.extract.warc_reader import (
    PageRecord,
    ReaderConfig,
    RecordOutcome,
    domain_of,
    read_archive,
)
from pipeline.schema import make_reject

STAGE = "extract"
NAMESPACE = "extract"
REJECTS = "rejects"
# Outcomes that concern a whole file, not one record (not counted in ``records`` / ``pages_read``).
TIERS = ("fast", "precise")
FILE_LEVEL_REASONS = frozenset({"file_unreadable", "archive_error", "too_many_archive_errors", "whole_file_gzip"})


@dataclass(frozen=True)
class ExtractConfig:
    """Limits and switches of the extract stage (command-line flags of the same names)."""

    max_payload_bytes: int = 4 * 1024 * 1024
    extract_timeout_s: float = 20.0
    extract_memory_mb: int = 4096
    extract_isolation: str = "process"  # process | thread | inline (see pipeline.extract.sandbox)
    extract_processes: int = 2  # extractor processes per worker process, shared by its threads
    max_resyncs_per_file: int = 100
    max_replacement_share: float = 0.01
    langid_max_chars: int = 10_000
    reshuffle_pages: bool = False
    exact_dedup: bool = True  # drop identical payloads before extraction (pipeline.extract.exact_dups)
    # fast: resiliparse text to score (pipeline.extract.fast_text); the pages the rounds recall are
    # re-extracted precisely by pipeline.extract.refine. precise: html_math on every page (one tier).
    tier: str = "fast"

    def __post_init__(self):
        self.reader()  # validates
        self.sandbox()
        if not 0.0 <= self.max_replacement_share <= 1.0:
            raise ValueError("max_replacement_share must be within [0, 1]")
        if self.langid_max_chars <= 0:
            raise ValueError("langid_max_chars must be positive")
        if self.extract_processes < 1:
            raise ValueError("extract_processes must be >= 1")
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {self.tier!r}")

    def reader(self) -> ReaderConfig:
        return ReaderConfig(max_payload_bytes=self.max_payload_bytes, max_resyncs_per_file=self.max_resyncs_per_file)

    def sandbox(self) -> SandboxConfig:
        return SandboxConfig(timeout_s=self.extract_timeout_s, memory_limit_mb=self.extract_memory_mb,
                             mode=self.extract_isolation)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DecodedPage:
    record: PageRecord  # payload dropped (b"") once decoded, to halve the memory per element
    html: str  # decoded HTML, or the plain text of a WET record
    encoding: str


@dataclass(frozen=True)
class ExtractedPage:
    record: PageRecord
    text: str
    title: str | None
    num_formulas: int
    math_renderer: bool = False  # the HTML loads MathJax/KaTeX (False for WET text)


# ---------------------------------------------------------------------------------------------
# Pure functions


def document_id(url: str | None, text: str) -> str:
    """Stable, content-addressed page id: sha1 hex of ``url + "\\n" + text``."""
    return hashlib.sha1(f"{url or ''}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()


_TEX_SPANS = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$])\$[^$\n]+?(?<!\\)\$", re.DOTALL)


def count_tex_formulas(text: str) -> int:
    """Number of TeX formulas (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``) in plain text."""
    return sum(1 for _ in _TEX_SPANS.finditer(text))


def document_row(page: ExtractedPage, lang: str, lang_score: float) -> dict:
    """The ``DOCUMENT_SCHEMA`` row of an extracted page."""
    record = page.record
    return {
        "id": document_id(record.url, page.text),
        "url": record.url,
        "domain": domain_of(record.url),
        "fetch_time": record.fetch_time,
        "warc_path": record.warc_path,
        "warc_offset": int(record.warc_offset),
        "source_format": record.source_format,
        "title": page.title,
        "lang": lang,
        "lang_score": float(lang_score),
        "text": page.text,
        "num_chars": len(page.text),
        "num_formulas": int(page.num_formulas),
        "math_renderer": bool(page.math_renderer),
    }


def reject_row(record: PageRecord | RecordOutcome, reason: str, detail: str = "") -> dict:
    """A ``REJECT_SCHEMA`` row for a page or outcome."""
    if isinstance(record, PageRecord):
        return make_reject(STAGE, record.warc_path, record.warc_offset, record.url, reason, detail)
    return make_reject(STAGE, record.warc_path, record.offset, record.url, reason, detail or record.detail)


def diagnose_empty(html: str) -> tuple[str, str]:
    """Why extraction of ``html`` gave no text: ``html_too_deep`` when libxml2 stopped at its nesting
    limit (it then silently drops everything below), else ``empty_text``."""
    try:
        from lxml import etree

        parser = etree.HTMLParser(recover=True)
        etree.fromstring(html.encode("utf-8", "surrogatepass"), parser)
        for entry in parser.error_log:
            if "Excessive depth" in entry.message:
                return "html_too_deep", f"nesting deeper than the HTML parser's limit ({entry.message.strip()})"
    except Exception as exc:  # noqa: BLE001 - a page lxml cannot parse at all
        return "html_unparseable", f"{type(exc).__name__}: {exc}"[:300]
    return "empty_text", "no main text found"


# ---------------------------------------------------------------------------------------------
# DoFns: thin shells that count and route


def _count(name: str, value: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(value)


def _internal_error(element, exc: Exception) -> dict:
    """An unexpected exception for one element: a counted reject, never a failed job."""
    _count("rejected:internal_error")
    record = getattr(element, "record", element)
    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(record, (PageRecord, RecordOutcome)):
        return reject_row(record, "internal_error", tb)
    return make_reject(STAGE, str(record)[:300], -1, None, "internal_error", tb)


class ReadRecordsFn(beam.DoFn):
    """File path -> ``PageRecord``s; skips counted, rejects to the ``rejects`` output."""

    def __init__(self, config: ExtractConfig):
        self.config = config

    def process(self, file_info):
        keep = None
        if isinstance(file_info[0], tuple):  # ((path, size), offsets to keep) from exact_dups.KeepSets
            file_info, keep = file_info
        path, size = file_info
        _count("files")
        _count("file_bytes", int(size or 0))
        try:
            for item in read_archive(path, self.config.reader()):
                if isinstance(item, PageRecord):
                    _count("records")
                    _count("pages_read")
                    if keep is not None and int(item.warc_offset) not in keep:
                        _count("rejected:exact_duplicate")
                        yield beam.pvalue.TaggedOutput(REJECTS, reject_row(item, "exact_duplicate",
                                                                           "same payload digest as an earlier record"))
                        continue
                    _count("payload_bytes", len(item.payload))
                    yield item
                    continue
                file_level = item.reason in FILE_LEVEL_REASONS
                if not file_level:
                    _count("records")
                if item.kind == "skip":
                    _count(f"skipped:{item.reason}")
                    continue
                if not file_level:
                    _count("pages_read")
                _count(f"rejected:{item.reason}")
                yield beam.pvalue.TaggedOutput(REJECTS, reject_row(item, item.reason))
        except Exception as exc:  # noqa: BLE001 - read_archive never raises; this is a last resort
            yield beam.pvalue.TaggedOutput(REJECTS, _internal_error(path, exc))


class DecodeFn(beam.DoFn):
    """``PageRecord`` -> ``DecodedPage`` (bytes -> str); binary and undecodable payloads rejected."""

    def __init__(self, config: ExtractConfig):
        self.config = config

    def process(self, record):
        try:
            decoded = decode_payload(record.payload, record.content_type, is_html=record.source_format == "html",
                                     max_replacement_share=self.config.max_replacement_share)
        except DecodeError as exc:
            _count(f"rejected:{exc.reason}")
            yield beam.pvalue.TaggedOutput(REJECTS, reject_row(record, exc.reason, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            yield beam.pvalue.TaggedOutput(REJECTS, _internal_error(record, exc))
            return
        _count(f"charset_from:{decoded.source}")
        yield DecodedPage(record=replace(record, payload=b""), html=decoded.text, encoding=decoded.encoding)


class ExtractMainTextFn(beam.DoFn):
    """``DecodedPage`` -> ``ExtractedPage``: main text with formulas as TeX; failures and empty
    pages rejected with their reason. The precise tier runs in a sandbox with a time and memory
    limit; the fast tier (resiliparse, linear in the page) runs in the worker itself."""

    def __init__(self, config: ExtractConfig):
        self.config = config
        self._pool: SandboxPool | None = None
        self._timing = None

    def setup(self):
        if self.config.tier == "precise":
            # One pool per worker process, shared by all threads (and DoFn instances) of that process.
            self._pool = shared_pool(self.config.sandbox(), self.config.extract_processes)
        self._timing = Metrics.distribution(NAMESPACE, "extract_ms")

    def _extract(self, html: str, url: str | None):
        if self._pool is None:
            from pipeline.extract.fast_text import fast_main_text

            return fast_main_text(html, url)
        with self._pool.lease() as extract:
            return extract(html, url)

    def process(self, page):
        record = page.record
        try:
            if record.source_format == "text":
                text = page.html.strip()
                extracted = ExtractedPage(record, text, None, count_tex_formulas(text))
                if extracted.num_formulas:
                    _count("formula_source:wet text", extracted.num_formulas)
            else:
                started = time.monotonic()
                try:
                    result = self._extract(page.html, record.url)
                except ExtractionError as exc:
                    _count(f"rejected:{exc.reason}")
                    yield beam.pvalue.TaggedOutput(REJECTS, reject_row(record, exc.reason, str(exc)))
                    return
                finally:
                    self._timing.update(int(1000 * (time.monotonic() - started)))
                renderer = result.math_renderer
                extracted = ExtractedPage(record, (result.text or "").strip(), result.title, int(result.num_formulas),
                                          loads_math_renderer(page.html) if renderer is None else renderer)
                if extracted.text:
                    for source, n in (result.formula_sources or {}).items():
                        _count(f"formula_source:{source}", n)
            if not extracted.text:
                reason, detail = ("empty_text", "the WET record holds no text") if record.source_format == "text" \
                    else diagnose_empty(page.html)
                _count(f"rejected:{reason}")
                yield beam.pvalue.TaggedOutput(REJECTS, reject_row(record, reason, detail))
                return
            yield extracted
        except Exception as exc:  # noqa: BLE001
            yield beam.pvalue.TaggedOutput(REJECTS, _internal_error(page, exc))


def _load_identifier(max_chars: int):
    from classifiers.langid import LanguageIdentifier

    return LanguageIdentifier(max_chars=max_chars)


@dataclass(frozen=True)
class LabelledPage:
    page: ExtractedPage
    lang: str
    lang_score: float


class IdentifyLanguageFn(beam.DoFn):
    """``ExtractedPage`` -> ``LabelledPage`` with ``lang``/``lang_score`` (fastText lid.176, loaded
    once per worker process through a ``Shared`` handle)."""

    def __init__(self, config: ExtractConfig):
        self.config = config
        self._shared = shared.Shared()
        self._identifier = None

    def setup(self):
        max_chars = self.config.langid_max_chars
        self._identifier = self._shared.acquire(lambda: _load_identifier(max_chars), tag=f"lid176-{max_chars}")

    def process(self, page):
        try:
            lang, score = self._identifier.identify(page.text)
        except Exception as exc:  # noqa: BLE001
            yield beam.pvalue.TaggedOutput(REJECTS, _internal_error(page, exc))
            return
        yield LabelledPage(page, lang, score)


def to_row(labelled):
    """The output row of a labelled page (counts it as kept)."""
    row = document_row(labelled.page, labelled.lang, labelled.lang_score)
    _count("pages_kept")
    _count("text_chars", row["num_chars"])
    _count("formulas", row["num_formulas"])
    if row["num_formulas"]:
        _count("pages_with_formulas")
    if row["math_renderer"]:
        _count("pages_with_math_renderer")
    if labelled.page.record.truncated:
        _count("pages_truncated")
    return row


# ---------------------------------------------------------------------------------------------
# The composite transform


class ExtractText(beam.PTransform):
    """Archive globs -> ``{"documents": rows, "rejects": reject rows}`` (see the module docstring)."""

    def __init__(self, patterns: list[str], config: ExtractConfig | None = None):
        super().__init__()
        if not patterns:
            raise ValueError("ExtractText needs at least one input pattern")
        self.patterns = list(patterns)
        self.config = config or ExtractConfig()

    def expand(self, pbegin):
        cfg = self.config
        files = (
            pbegin
            | "InputPatterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> fileio.MatchAll(EmptyMatchTreatment.ALLOW)
            | "FilePaths" >> beam.Map(lambda meta: (meta.path, int(meta.size_in_bytes or 0)))
            | "SpreadFiles" >> beam.Reshuffle()
        )
        if cfg.exact_dedup:
            files = files | "ExactDuplicates" >> KeepSets(cfg.reader())
        records = files | "ReadRecords" >> beam.ParDo(ReadRecordsFn(cfg)).with_outputs(REJECTS, main="pages")
        pages = records.pages
        if cfg.reshuffle_pages:
            pages = pages | "SpreadPages" >> beam.Reshuffle()
        decoded = pages | "Decode" >> beam.ParDo(DecodeFn(cfg)).with_outputs(REJECTS, main="pages")
        extracted = decoded.pages | "ExtractMainText" >> beam.ParDo(ExtractMainTextFn(cfg)).with_outputs(
            REJECTS, main="pages")
        labelled = extracted.pages | "IdentifyLanguage" >> beam.ParDo(IdentifyLanguageFn(cfg)).with_outputs(
            REJECTS, main="pages")
        documents = labelled.pages | "ToRows" >> beam.Map(to_row)
        rejects = (
            (records[REJECTS], decoded[REJECTS], extracted[REJECTS], labelled[REJECTS])
            | "CollectRejects" >> beam.Flatten()
        )
        return {"documents": documents, "rejects": rejects}
