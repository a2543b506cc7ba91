"""Exact duplicates dropped before any extraction: one page per identical payload.

Two cheap passes over the archives, so that no step ever shuffles a payload:

1. ``ScanDigests``: every page record of every file -> ``(sha1(payload), (warc_path, warc_offset))``;
   per digest the smallest position is the representative (``CombinePerKey(min)``: a few bytes
   per page, never the payload).
2. The representatives, grouped by file, are the *keep set* of that file: ``ReadRecordsFn`` reads
   every file again as before and drops a page whose position is not in its file's keep set,
   counted as ``rejected:exact_duplicate`` (so ``pages_read = pages_kept + rejected`` still holds).

The scan only decompresses and hashes (no HTML parsing), a small fraction of the extraction's
cost per page; the shuffle carries 20-byte digests and positions, and a keep set holds the
offsets of one file's pages (tens of thousands of integers for a Common Crawl WARC file).

The representative of a set of identical payloads is the same on every runner and every run (the
smallest ``(warc_path, warc_offset)``). The digest is of the payload as read (HTTP body after
transfer and content decoding, at most ``max_payload_bytes``), so two responses that differ only
in their HTTP headers count as duplicates; near-duplicates are left to the dedup stage (MinHash).
"""
from __future__ import annotations

import hashlib

import apache_beam as beam

from pipeline.extract.warc_reader import PageRecord, ReaderConfig, read_archive


def payload_digest(payload: bytes) -> str:
    """The content digest two identical payloads share (sha1 hex)."""
    return hashlib.sha1(payload).hexdigest()


class ScanDigestsFn(beam.DoFn):
    """``(path, size)`` -> ``(digest, (path, offset))`` for every page record of the file."""

    def __init__(self, reader: ReaderConfig):
        self.reader = reader

    def process(self, file_info):
        path, _ = file_info
        for item in read_archive(path, self.reader):
            if isinstance(item, PageRecord):
                yield payload_digest(item.payload), (item.warc_path, int(item.warc_offset))


def _with_keep_set(element):
    path, groups = element
    sizes = list(groups["files"])
    keep = frozenset(int(o) for o in groups["keep"])
    for size in sizes[:1]:  # a file matched by two patterns is read once
        yield (path, size), keep


class KeepSets(beam.PTransform):
    """``(path, size)`` files -> ``((path, size), frozenset(offsets to keep))``, one per file."""

    def __init__(self, reader: ReaderConfig):
        super().__init__()
        self.reader = reader

    def expand(self, files):
        keep = (
            files
            | "ScanDigests" >> beam.ParDo(ScanDigestsFn(self.reader))
            | "FirstPositionPerDigest" >> beam.CombinePerKey(min)
            | "ByFile" >> beam.Map(lambda kv: kv[1])
        )
        return (
            {"files": files, "keep": keep}
            | "JoinFiles" >> beam.CoGroupByKey()
            | "KeepSet" >> beam.FlatMap(_with_keep_set)
        )
