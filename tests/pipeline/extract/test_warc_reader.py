"""The archive reader on real archives, the shared edge cases, and archives damaged inside the test."""
from __future__ import annotations

import collections
import io
import tracemalloc

import pytest
from extract_warc_factory import count_html_200, gzip_bomb, html_page, http_response, write_warc

from pipeline.extract.warc_reader import (
    PageRecord,
    ReaderConfig,
    RecordOutcome,
    domain_of,
    iso_utc,
    iter_archive,
    read_archive,
)


def outcomes(items) -> collections.Counter:
    return collections.Counter(
        "page" if isinstance(i, PageRecord) else f"{i.kind}:{i.reason}" for i in items
    )


# -- small pure helpers ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("2017-03-06T04:03:53Z", "2017-03-06T04:03:53Z"),
    ("2019-08-16T12:34:56.123456Z", "2019-08-16T12:34:56Z"),
    ("2019-08-16T14:34:56+02:00", "2019-08-16T12:34:56Z"),
    ("20080430204825", "2008-04-30T20:48:25Z"),
    ("not a date", None),
    (None, None),
])
def test_iso_utc(raw, expected):
    assert iso_utc(raw) == expected


@pytest.mark.parametrize("url,expected", [
    ("https://www.Example.COM:8080/a?b", "example.com"),
    ("http://math.stackexchange.com/q/1", "math.stackexchange.com"),
    ("http://[::1]:80/", "::1"),
    ("dns:www.archive.org", None),
    ("http://[bad", None),
    (None, None),
])
def test_domain_of(url, expected):
    assert domain_of(url) == expected


# -- real archives ---------------------------------------------------------------------------------

def test_sample_archives_account_for_every_html_response(sample_dir):
    for path in sorted((sample_dir / "warc").iterdir()):
        items = list(read_archive(str(path)))
        pages = [i for i in items if isinstance(i, PageRecord)]
        page_rejects = [i for i in items if isinstance(i, RecordOutcome) and i.kind == "reject"]
        assert len(pages) + len(page_rejects) == count_html_200(path), path.name
        assert pages, path.name
        for page in pages:
            assert page.payload and page.fetch_time and page.url


def test_offsets_point_back_to_the_record(sample_dir):
    from warcio.archiveiterator import ArchiveIterator

    path = sample_dir / "warc" / "resiliparse__warcfile.warc.gz"
    pages = [i for i in read_archive(str(path)) if isinstance(i, PageRecord)]
    assert len(pages) == 16
    with open(path, "rb") as fh:
        for page in pages:
            fh.seek(page.warc_offset)
            record = next(iter(ArchiveIterator(fh)))
            assert record.rec_headers.get_header("WARC-Target-URI") == page.url
            assert record.content_stream().read() == page.payload


def test_edge_cases(shared_data):
    edge = shared_data / "warc" / "edge_cases"
    got = {p.name: list(read_archive(str(p))) for p in sorted(edge.iterdir())}
    assert len(got) == 7
    # Whole-file gzip: warcio stops after one record; the reader recovers the rest decompressed.
    bad_gzip = outcomes(got["warcio__example-bad-non-chunked.warc.gz"])
    assert bad_gzip["page"] == 1 and bad_gzip["skip:whole_file_gzip"] == 1 and bad_gzip["skip:revisit"] == 1
    # Broken chunking: the record is empty, the archive breaks at byte 516; both are rejects.
    wrong = got["warcio__example-wrong-chunks.warc.gz"]
    assert [(i.reason, i.offset) for i in wrong if i.kind == "reject"] == [("empty_payload", 0), ("archive_error", 516)]
    # Clipped payload: kept, flagged truncated.
    (clipped,) = got["resiliparse__clipped.warc.gz"]
    assert isinstance(clipped, PageRecord) and clipped.truncated and len(clipped.payload) == 74970
    for name in ("warcio__example-iana.org-chunked.warc", "warcio__example-trunc.warc", "warcio__example.arc.gz",
                 "warcio__example.warc.gz"):
        counts = outcomes(got[name])
        assert counts["page"] == 1, name
        assert not [k for k in counts if k.startswith("reject")], name
    (arc_page,) = [i for i in got["warcio__example.arc.gz"] if isinstance(i, PageRecord)]
    assert arc_page.url == "http://example.com/" and arc_page.fetch_time == "2014-02-16T05:02:21Z"
    assert b"Example Domain" in arc_page.payload
    # Chunked transfer-encoding is decoded.
    (chunked,) = [i for i in got["warcio__example-iana.org-chunked.warc"] if isinstance(i, PageRecord)]
    assert chunked.payload.rstrip().endswith(b"</html>")


# -- damaged archives built from a real one ---------------------------------------------------------

@pytest.fixture(scope="module")
def cc_bytes(sample_dir) -> bytes:
    return (sample_dir / "warc" / "resiliparse__warcfile.warc.gz").read_bytes()


def test_corrupt_gzip_member_loses_only_that_record(cc_bytes):
    damaged = bytearray(cc_bytes)
    for i in range(50_000, 50_400):
        damaged[i] ^= 0x5A
    items = list(iter_archive(io.BytesIO(bytes(damaged)), "damaged.warc.gz"))
    counts = outcomes(items)
    assert counts["reject:archive_error"] == 1
    pages = [i for i in items if isinstance(i, PageRecord)]
    # 16 pages in the file: the damaged one comes out cut short (flagged), none is lost after it.
    assert len(pages) == 16
    assert sum(p.truncated for p in pages) == 1
    assert counts["skip:record_type_request"] == 17 and counts["skip:record_type_metadata"] == 16


def test_truncated_file_keeps_the_records_before_the_cut(cc_bytes):
    cut = cc_bytes[: int(len(cc_bytes) * 0.6)]
    pages = [i for i in iter_archive(io.BytesIO(cut), "cut.warc.gz") if isinstance(i, PageRecord)]
    full = [i for i in iter_archive(io.BytesIO(cc_bytes), "full.warc.gz") if isinstance(i, PageRecord)]
    assert 5 < len(pages) < 16
    assert [p.url for p in pages] == [p.url for p in full[: len(pages)]]
    assert pages[-1].truncated and not any(p.truncated for p in pages[:-1])


def test_garbage_inside_uncompressed_archive_resyncs(cc_bytes):
    import gzip

    raw = gzip.decompress(cc_bytes)
    middle = len(raw) // 2
    damaged = raw[:middle] + b"garbage line\r\n" * 50 + raw[middle:]
    items = list(iter_archive(io.BytesIO(damaged), "damaged.warc"))
    counts = outcomes(items)
    assert counts["reject:archive_error"] == 1
    assert counts["page"] == 16  # the record holding the garbage is read (with it); the rest follow


def test_not_an_archive_is_one_reject(tmp_path):
    path = tmp_path / "notes.warc.gz"
    path.write_bytes(b"this is not a WARC file at all\n" * 10)
    items = list(read_archive(str(path)))
    assert [(i.kind, i.reason) for i in items] == [("reject", "archive_error")]
    missing = list(read_archive(str(tmp_path / "missing.warc.gz")))
    assert [(i.kind, i.reason) for i in missing] == [("reject", "file_unreadable")]


def test_gzip_bomb_is_rejected_with_bounded_memory(tmp_path):
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in ~250 kB
    good = html_page("Fine", ["A page that must still come out after the bomb."])
    path = write_warc(tmp_path / "bomb.warc.gz", [
        ("http://bomb.example/", *http_response(bomb, extra_headers=[("Content-Encoding", "gzip")])),
        ("http://good.example/", *http_response(good)),
    ])
    config = ReaderConfig(max_payload_bytes=1 << 20)
    tracemalloc.start()
    items = list(read_archive(str(path), config))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rejects = [i for i in items if isinstance(i, RecordOutcome) and i.kind == "reject"]
    assert [(r.reason, r.url) for r in rejects] == [("content_encoding_bomb", "http://bomb.example/")]
    assert [i.url for i in items if isinstance(i, PageRecord)] == ["http://good.example/"]
    assert peak < 64 << 20, f"reading a gzip bomb peaked at {peak / 2**20:.0f} MiB"


def test_oversized_payload_and_status_and_type_skips(tmp_path):
    path = write_warc(tmp_path / "mixed.warc.gz", [
        ("http://big.example/", *http_response(b"<html><body>" + b"x" * 300_000 + b"</body></html>")),
        ("http://missing.example/", *http_response(b"<html>gone</html>", status="404 Not Found")),
        ("http://image.example/a.png", *http_response(b"\x89PNG\r\n\x1a\n" + bytes(50), content_type="image/png")),
        ("http://untyped.example/", *http_response(b"<!DOCTYPE html><html><body>hi</body></html>", content_type=None)),
        ("http://untyped.example/bin", *http_response(b"\x00\x01binary", content_type=None)),
    ], gzip_members=False)
    items = list(read_archive(str(path), ReaderConfig(max_payload_bytes=100_000)))
    assert [(type(i).__name__, getattr(i, "reason", None)) for i in items] == [
        ("RecordOutcome", "payload_too_large"),
        ("RecordOutcome", "http_status_404"),
        ("RecordOutcome", "not_html"),
        ("PageRecord", None),
        ("RecordOutcome", "not_html"),
    ]
