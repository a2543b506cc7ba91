"""Build small WARC files inside tests: real warcio-written records, including hostile ones."""
from __future__ import annotations

import io
import zlib
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def http_response(body: bytes, content_type: str | None = "text/html; charset=utf-8", status: str = "200 OK",
                  extra_headers: list[tuple[str, str]] | None = None) -> tuple[StatusAndHeaders, bytes]:
    headers = [("Content-Length", str(len(body)))]
    if content_type is not None:
        headers.insert(0, ("Content-Type", content_type))
    headers += extra_headers or []
    return StatusAndHeaders(status, headers, protocol="HTTP/1.1"), body


def write_warc(path: Path, responses: list[tuple[str, StatusAndHeaders, bytes]], gzip_members: bool = True) -> Path:
    """A WARC with one response record per ``(url, http_headers, body)``, one gzip member each."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gzip_members)
        for url, headers, body in responses:
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers,
                                               warc_headers_dict={"WARC-Date": "2024-01-02T03:04:05Z"})
            writer.write_record(record)
    return path


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip stream that inflates to ``inflated_bytes`` zero bytes (about 1000:1)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [comp.compress(chunk) for _ in range(inflated_bytes >> 20)]
    parts.append(comp.flush())
    return b"".join(parts)


def html_page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{body}</article></body></html>").encode()


def deeply_nested_page(depth: int) -> bytes:
    text = "<p>This paragraph sits far below the body, deeper than any parser should have to go.</p>"
    return ("<html><body>" + "<div>" * depth + text + "</div>" * depth + "</body></html>").encode("utf-8")


def count_html_200(path: Path) -> int:
    """Independent count of the pages a reader must account for: HTTP-200 HTML ``response`` records
    and WET ``conversion`` records, iterated with warcio directly."""
    count = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, arc2warc=True):
            if record.rec_type == "conversion":
                count += 1
            elif record.rec_type == "response" and record.http_headers is not None:
                content_type = (record.http_headers.get_header("Content-Type") or "").lower()
                if record.http_headers.get_statuscode() == "200" and "html" in content_type:
                    count += 1
    return count
