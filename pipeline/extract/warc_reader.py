"""Read WARC / ARC / WET archives (gzip or not, any Beam filesystem) record by record, never failing.

``read_archive(path)`` yields exactly one item per record it meets, plus one per file-level problem:
- a ``PageRecord`` for every page to extract: a WARC/ARC ``response`` with HTTP status 200 and an
  HTML content type (a missing content type is sniffed), or a WET ``conversion`` record (plain text);
- a ``RecordOutcome(kind="skip")`` for every other record (``record_type_request``,
  ``record_type_metadata``, ``revisit``, ``not_http`` (e.g. ``dns:``), ``http_status_404``,
  ``not_html``...): counted, not written;
- a ``RecordOutcome(kind="reject")`` for a page that could not be read (``payload_too_large``,
  ``content_encoding_bomb``, ``payload_read_error``, ``empty_payload``) and for file-level failures
  (``file_unreadable``, ``archive_error``): written to ``rejects/`` with file, offset and detail.

Robustness guarantees:
- Memory is bounded whatever a record holds: at most ``max_payload_bytes`` of (decoded) payload are
  read per record, in ``read_chunk_bytes`` pieces; a ``Content-Encoding: gzip`` payload that
  inflates beyond the cap (a gzip bomb) is rejected after reading ``max_payload_bytes`` + 1 bytes.
  The rest of an oversized record is skipped in raw form.
- A file that breaks half-way keeps the records read before the break; the reader then *resyncs*:
  it scans forward for the next gzip member that starts a WARC record (or, uncompressed, the next
  ``WARC/1.x`` line) and continues from there, so one corrupt member does not lose the rest of a
  1 GB Common Crawl file. Each break is one ``archive_error`` reject (at most
  ``max_resyncs_per_file`` per file).
- A whole-file gzip (a ``.warc.gz`` that is one gzip stream rather than one member per record, which
  warcio refuses after the first record) is re-read through a streaming decompressor; its
  ``warc_offset`` values are then offsets in the decompressed stream (counted as
  ``whole_file_gzip``).
- A record cut short by the end of the file (clipped) is kept, flagged ``truncated`` (as are
  records Common Crawl marked ``WARC-Truncated``); the extractor gets what is there.

Offsets are those of warcio's ``ArchiveIterator``: for ``.gz`` archives the offset of the record's
gzip member in the compressed file, so ``warc_path`` + ``warc_offset`` seek straight to the record.

Known limit: warcio reads header lines without a length cap, so a record whose WARC/HTTP header
is one multi-GB line without a newline would use that much memory; real archives do not do this.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

HTML_MIME_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "application/xhtml", "text/xhtml", "application/vnd.wap.xhtml+xml"}
)
SNIFF_BYTES = 1024
_HTML_SNIFF = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_LINE = re.compile(rb"(?:^|\n)(WARC/(?:1\.[01]|0\.1[78])\r?\n)")
_SCAN_BLOCK = 1 << 20


@dataclass(frozen=True)
class ReaderConfig:
    """Limits of the archive reader."""

    max_payload_bytes: int = 4 * 1024 * 1024  # Common Crawl truncates payloads at 1 MiB; 4 MiB leaves room
    read_chunk_bytes: int = 64 * 1024
    max_resyncs_per_file: int = 100

    def __post_init__(self):
        if self.max_payload_bytes <= 0 or self.read_chunk_bytes <= 0 or self.max_resyncs_per_file < 0:
            raise ValueError("reader limits must be positive")


@dataclass(frozen=True)
class PageRecord:
    """One page to extract, as read from an archive."""

    warc_path: str
    warc_offset: int
    url: str | None
    fetch_time: str | None  # ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"
    source_format: str  # "html" (WARC/ARC response) or "text" (WET conversion)
    content_type: str | None  # HTTP Content-Type (or the WARC one for WET records)
    payload: bytes  # the HTTP body after transfer/content decoding, at most max_payload_bytes
    truncated: bool = False  # cut short by the end of the file, or marked WARC-Truncated

    @property
    def offset(self) -> int:
        return self.warc_offset


@dataclass(frozen=True)
class RecordOutcome:
    """A record (or file) that does not become a page: a counted skip or a written reject."""

    kind: str  # "skip" or "reject"
    reason: str
    warc_path: str
    offset: int
    url: str | None = None
    detail: str = ""


def iso_utc(date: str | None) -> str | None:
    """WARC-Date (ISO 8601, with or without fraction/offset) or a 14-digit ARC/WARC-0.17 timestamp,
    as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC; None when absent or unparseable."""
    if not date:
        return None
    value = date.strip()
    parsed: datetime | None = None
    if value.isdigit() and len(value) >= 8:
        try:
            parsed = datetime.strptime(value[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def domain_of(url: str | None) -> str | None:
    """Lower-cased host of ``url`` without ``www.`` and port; None when there is no host."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    return host.removeprefix("www.")


def clean_url(url: str | None) -> str | None:
    """The target URI without the angle brackets some WARC writers put around it."""
    if url is None:
        return None
    url = url.strip()
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    return url or None


def mime_type(content_type: str | None) -> str:
    """``text/html; charset=x`` -> ``text/html`` (lower-cased; empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def looks_like_html(payload_head: bytes) -> bool:
    """Whether the first bytes of a payload without a content type look like an HTML document."""
    return bool(_HTML_SNIFF.search(payload_head[:SNIFF_BYTES]))


def _http_status_reason(status: str | None) -> str:
    status = (status or "").strip()
    return f"http_status_{status}" if len(status) == 3 and status.isdigit() else "http_status_invalid"


def _read_capped(stream, cap: int, chunk: int) -> tuple[bytes, bool]:
    """Read at most ``cap`` bytes; returns (data, exceeded) where exceeded means more was available."""
    parts: list[bytes] = []
    total = 0
    while total <= cap:
        piece = stream.read(min(chunk, cap + 1 - total))
        if not piece:
            return b"".join(parts), False
        parts.append(piece)
        total += len(piece)
    data = b"".join(parts)
    return data[:cap], True


def _drain_raw(record, chunk: int) -> bool:
    """Consume the rest of the record's raw block; True if the file ended before Content-Length."""
    raw = record.raw_stream
    while True:
        piece = raw.read(chunk)
        if not piece:
            break
    remaining = getattr(raw, "limit", 0) or 0
    return remaining > 0


def _page_from_record(record, path: str, offset: int, config: ReaderConfig) -> PageRecord | RecordOutcome:
    """Classify one warcio record and, for pages, read its payload within the limits."""
    rec_type = (record.rec_type or "unknown").lower()
    headers = record.rec_headers
    url = clean_url(headers.get_header("WARC-Target-URI"))
    if rec_type == "conversion":
        source_format = "text"
        content_type = headers.get_header("Content-Type") or "text/plain; charset=utf-8"
        stream = record.content_stream()
    elif rec_type == "response":
        http = record.http_headers
        if http is None or not getattr(http, "protocol", "").upper().startswith("HTTP"):
            return RecordOutcome("skip", "not_http", path, offset, url)
        status = http.get_statuscode()
        if status != "200":
            return RecordOutcome("skip", _http_status_reason(status), path, offset, url)
        content_type = http.get_header("Content-Type")
        source_format = "html"
        if content_type and mime_type(content_type) not in HTML_MIME_TYPES:
            return RecordOutcome("skip", "not_html", path, offset, url)
        stream = record.content_stream()
    elif rec_type == "revisit":
        return RecordOutcome("skip", "revisit", path, offset, url)
    else:
        return RecordOutcome("skip", f"record_type_{re.sub(r'[^a-z0-9_]', '_', rec_type)[:40]}", path, offset, url)

    try:
        payload, exceeded = _read_capped(stream, config.max_payload_bytes, config.read_chunk_bytes)
    except Exception as exc:  # noqa: BLE001 - any decoding failure of this record is its reject
        return RecordOutcome("reject", "payload_read_error", path, offset, url, f"{type(exc).__name__}: {exc}")
    if exceeded:
        encoding = (record.http_headers.get_header("Content-Encoding") or "") if record.http_headers else ""
        raw_length = record.length or 0
        if encoding and raw_length <= config.max_payload_bytes:
            return RecordOutcome(
                "reject", "content_encoding_bomb", path, offset, url,
                f"Content-Encoding {encoding}: {raw_length} bytes inflate beyond the {config.max_payload_bytes}-byte cap",
            )
        return RecordOutcome(
            "reject", "payload_too_large", path, offset, url,
            f"payload exceeds the {config.max_payload_bytes}-byte cap (record Content-Length {raw_length})",
        )
    if source_format == "html" and content_type is None and not looks_like_html(payload):
        return RecordOutcome("skip", "not_html", path, offset, url)
    truncated = _drain_raw(record, config.read_chunk_bytes) or bool(headers.get_header("WARC-Truncated"))
    if not payload.strip():
        return RecordOutcome("reject", "empty_payload", path, offset, url,
                             "the record has no payload" + (" (truncated)" if truncated else ""))
    return PageRecord(
        warc_path=path,
        warc_offset=offset,
        url=url,
        fetch_time=iso_utc(headers.get_header("WARC-Date")),
        source_format=source_format,
        content_type=content_type,
        payload=payload,
        truncated=truncated,
    )


def _find_resync_point(stream: BinaryIO, start: int, is_gzip: bool) -> int | None:
    """Offset >= ``start`` of the next gzip member that decompresses to a WARC record (or, for an
    uncompressed archive, of the next ``WARC/x.y`` line); None when the file holds no more."""
    position = start
    overlap = 16
    while True:
        stream.seek(position)
        block = stream.read(_SCAN_BLOCK)
        if not block:
            return None
        if is_gzip:
            index = block.find(_GZIP_MAGIC)
            while index != -1:
                candidate = position + index
                if _member_starts_warc(stream, candidate):
                    return candidate
                index = block.find(_GZIP_MAGIC, index + 1)
        else:
            match = _WARC_LINE.search(block)
            if match:
                return position + match.start(1)
        if len(block) < _SCAN_BLOCK:
            return None
        position += len(block) - overlap


def _archive_head(stream: BinaryIO, is_gzip: bool) -> bytes:
    """The first bytes of the archive's content (decompressed for gzip), leading blank lines skipped."""
    stream.seek(0)
    head = stream.read(64 * 1024)
    stream.seek(0)
    if is_gzip:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 256)
        except zlib.error:
            return b""
    return head.lstrip(b"\r\n")


def _member_starts_warc(stream: BinaryIO, offset: int) -> bool:
    stream.seek(offset)
    head = stream.read(64 * 1024)
    try:
        data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 64)
    except zlib.error:
        return False
    return data.startswith(b"WARC/")


def _iterate(stream: BinaryIO, path: str, config: ReaderConfig, *,
             skip_records: int = 0) -> Iterator[PageRecord | RecordOutcome | _Break]:
    """Records of ``stream`` from its current position; ends with a ``_Break`` when the archive breaks."""
    iterator = ArchiveIterator(stream, arc2warc=True)
    seen = 0
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            yield _End(iterator.offset)
            return
        except Exception as exc:  # noqa: BLE001 - warcio raises many types on broken archives
            # iterator.offset is the start of the record that could not be read (or finished).
            offset = iterator.offset if isinstance(iterator.offset, int) and iterator.offset >= 0 else -1
            yield _Break(offset, f"{type(exc).__name__}: {_one_line(exc)}")
            return
        offset = iterator.offset
        seen += 1
        if seen <= skip_records:
            continue
        try:
            yield _page_from_record(record, path, offset, config)
        except Exception as exc:  # noqa: BLE001 - a record warcio parsed but we could not classify
            yield RecordOutcome("reject", "record_error", path, offset,
                                clean_url(record.rec_headers.get_header("WARC-Target-URI")),
                                f"{type(exc).__name__}: {_one_line(exc)}")


@dataclass(frozen=True)
class _Break:
    """The archive could not be read further from ``offset``."""

    offset: int
    detail: str


@dataclass(frozen=True)
class _End:
    """The iterator ended normally, believing the next record would start at ``offset``."""

    offset: int


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400]


def iter_archive(stream: BinaryIO, path: str, config: ReaderConfig | None = None,
                 reopen: Callable[[], BinaryIO] | None = None) -> Iterator[PageRecord | RecordOutcome]:
    """Every record of an open, seekable archive ``stream`` as a ``PageRecord`` or ``RecordOutcome``
    (see the module docstring). ``reopen`` gives a fresh stream for the whole-file-gzip fallback."""
    config = config or ReaderConfig()
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    is_gzip = stream.read(2) == _GZIP_MAGIC[:2]
    head = _archive_head(stream, is_gzip)
    if not head.startswith((b"WARC/", b"filedesc://")):
        # warcio's lenient ARC parser would read any text file as a stream of bogus records.
        yield RecordOutcome("reject", "archive_error", path, 0, None,
                            f"not a WARC or ARC archive (starts with {head[:40]!r})")
        return
    start = 0
    resyncs = 0
    yielded = 0
    while True:
        stream.seek(start)
        broke: _Break | None = None
        last_offset = start
        for item in _iterate(stream, path, config):
            if isinstance(item, _Break):
                broke = item
                break
            if isinstance(item, _End):
                broke = _check_end(stream, item.offset, last_offset, size, is_gzip)
                break
            yielded += 1
            last_offset = max(last_offset, item.offset)
            yield item
        if broke is None:
            return
        if is_gzip and start == 0 and "non-chunked gzip" in broke.detail and reopen is not None:
            yield RecordOutcome("skip", "whole_file_gzip", path, 0, None,
                                "archive is one gzip stream, not one member per record; re-read decompressed")
            yield from _iterate_whole_gzip(reopen, path, config, skip_records=yielded)
            return
        yield RecordOutcome("reject", "archive_error", path, broke.offset, None, broke.detail)
        if resyncs >= config.max_resyncs_per_file:
            yield RecordOutcome("reject", "too_many_archive_errors", path, broke.offset, None,
                                f"gave up on the file after {resyncs} resyncs")
            return
        try:
            resync = _find_resync_point(stream, max(broke.offset, last_offset, start) + 1, is_gzip)
        except Exception as exc:  # noqa: BLE001
            yield RecordOutcome("reject", "archive_error", path, broke.offset, None,
                                f"resync failed: {type(exc).__name__}: {_one_line(exc)}")
            return
        if resync is None:
            return
        resyncs += 1
        start = resync


def _check_end(stream: BinaryIO, end_offset: int, last_offset: int, size: int, is_gzip: bool) -> _Break | None:
    """A ``_Break`` when warcio ended before the real end of the archive, else None.

    warcio stops silently on a corrupt gzip member: it prints the zlib error, reads the rest of the
    file as undecodable and reports a normal end. So for gzip archives we check that no further
    WARC member starts after the last record read (scanning only that record's bytes)."""
    if end_offset < size and not is_gzip:
        return _Break(max(end_offset, last_offset), f"archive reader stopped at byte {end_offset} of {size}")
    if is_gzip:
        following = _find_resync_point(stream, last_offset + 1, True)
        if following is not None:
            return _Break(last_offset, f"corrupt gzip data after the record at {last_offset}; "
                          f"next readable record at {following}")
    return None


def _iterate_whole_gzip(reopen: Callable[[], BinaryIO], path: str, config: ReaderConfig,
                        skip_records: int) -> Iterator[PageRecord | RecordOutcome]:
    raw = reopen()
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as decompressed:
            buffered = io.BufferedReader(decompressed, buffer_size=1 << 16)
            for item in _iterate(buffered, path, config, skip_records=skip_records):
                if isinstance(item, _End):
                    return
                if isinstance(item, _Break):
                    yield RecordOutcome("reject", "archive_error", path, item.offset, None,
                                        "(offset in the decompressed stream) " + item.detail)
                    return
                yield item
    finally:
        raw.close()


def open_archive(path: str) -> BinaryIO:
    """Open ``path`` (local, ``gs://``, ``s3://``...) as raw, seekable bytes: no automatic decompression."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_archive(path: str, config: ReaderConfig | None = None,
                 opener: Callable[[str], BinaryIO] = open_archive) -> Iterator[PageRecord | RecordOutcome]:
    """Every record of the archive at ``path`` (see ``iter_archive``); a file that cannot be opened
    yields one ``file_unreadable`` reject. Never raises for a bad file."""
    try:
        stream = opener(path)
    except Exception as exc:  # noqa: BLE001
        yield RecordOutcome("reject", "file_unreadable", path, -1, None, f"{type(exc).__name__}: {_one_line(exc)}")
        return
    try:
        yield from iter_archive(stream, path, config, reopen=lambda: opener(path))
    except Exception as exc:  # noqa: BLE001 - e.g. the filesystem failing mid-read
        yield RecordOutcome("reject", "archive_error", path, -1, None, f"{type(exc).__name__}: {_one_line(exc)}")
    finally:
        with contextlib.suppress(Exception):
            stream.close()


def read_records_at(path: str, offsets: Iterable[int], config: ReaderConfig | None = None,
                    opener: Callable[[str], BinaryIO] = open_archive) -> Iterator[PageRecord | RecordOutcome]:
    """The records of ``path`` that start at ``offsets`` (the ``warc_offset`` values this reader
    gave), one item per distinct offset, in offset order: the same ``PageRecord`` that
    ``read_archive`` yields for it, or a ``refetch_failed`` reject. Each record is read by seeking
    to its offset; an archive where that does not work (one whole-file gzip stream, whose offsets
    are in the decompressed stream) is read through once instead. Never raises for a bad file."""
    config = config or ReaderConfig()
    wanted = sorted({int(o) for o in offsets})
    try:
        stream = opener(path)
    except Exception as exc:  # noqa: BLE001
        for offset in wanted:
            yield RecordOutcome("reject", "refetch_failed", path, offset, None,
                                f"cannot open the archive: {type(exc).__name__}: {_one_line(exc)}")
        return
    missing: list[int] = []
    try:
        for offset in wanted:
            item = _record_at(stream, path, offset, config)
            if item is None:
                missing.append(offset)
            else:
                yield item
    finally:
        with contextlib.suppress(Exception):
            stream.close()
    if missing:
        yield from _scan_for(path, missing, config, opener)


def _record_at(stream: BinaryIO, path: str, offset: int, config: ReaderConfig) -> PageRecord | RecordOutcome | None:
    """The record at ``offset`` of ``stream``, or None when no record starts there."""
    try:
        stream.seek(offset)
        record = next(ArchiveIterator(stream, arc2warc=True))
        item = _page_from_record(record, path, offset, config)
    except Exception:  # noqa: BLE001 - not a record boundary in this file: the caller scans
        return None
    return None if isinstance(item, RecordOutcome) and item.kind == "skip" else item


def _scan_for(path: str, offsets: list[int], config: ReaderConfig,
              opener: Callable[[str], BinaryIO]) -> Iterator[PageRecord | RecordOutcome]:
    remaining = set(offsets)
    for item in read_archive(path, config, opener):
        offset = item.warc_offset if isinstance(item, PageRecord) else item.offset
        if offset in remaining and (isinstance(item, PageRecord) or item.kind == "reject"):
            remaining.discard(offset)
            yield item
            if not remaining:
                return
    for offset in sorted(remaining):
        yield RecordOutcome("reject", "refetch_failed", path, offset, None,
                            "no page record starts at this offset any more (was the archive replaced?)")
