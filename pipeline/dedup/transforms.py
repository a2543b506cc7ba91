"""The dedup stage's composite transforms: ``ValidateRows``, ``DedupUrls``, ``DedupNearDuplicates``.

Rows are ``DOCUMENT_SCHEMA`` dicts; every transform returns new dicts. Every page leaves the
stage exactly once: kept (with ``dup_count``), removed (a ``REMOVED_SCHEMA`` row naming the
kept page and the reason) or rejected (a ``REJECT_SCHEMA`` row). ``dup_count`` of a kept page
is the number of input pages it stands for: itself, its URL duplicates and the pages of its
near-duplicate component (an input row that already has ``dup_count`` counts as that many,
so deduplicating deduplicated shards composes).

Representative of a near-duplicate component (``keep``): ``longest`` (default: most
characters of text), ``newest`` (latest fetch) or ``min_id``; ties by the smallest ``id``.
Near-duplicates: MinHash LSH band buckets give candidate edges (each member linked to the
bucket's few smallest members), every candidate is verified by the exact Jaccard of the two
pages' shingle sets (``verify``), and the verified edges' connected components
(``components``) are the clusters.
Transitive chains (A~B, B~C, A!~C) end in one component: one page is kept and the others
point to it, even those not similar to it themselves (as in datatrove, text-dedup and every
connected-components dedup).

Grouped values are iterated, never copied into lists (see ``components``), except in
``CoGroupByKey`` joins on the unique page id, where a key holds at most a few values.
"""
from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import Metrics

from pipeline.dedup.components import NAMESPACE, ConnectedComponents
from pipeline.dedup.minhash import MinHashConfig, MinHasher, shingle_fingerprint, shingle_hashes
from pipeline.dedup.urls import fetch_epoch, fetch_rank, normalize_url
from pipeline.dedup.verify import BucketCandidateEdges, VerifyEdges
from pipeline.schema import make_reject

STAGE = "dedup"
REASON_URL = "url"
REASON_NEAR_DUP = "near_dup"
KEEP_POLICIES = ("longest", "newest", "min_id")

REMOVED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # the removed page
        pa.field("kept_id", pa.string(), nullable=False),  # the page in the kept output that stands for it
        pa.field("reason", pa.string(), nullable=False),  # "url" or "near_dup"
        pa.field("url", pa.string()),  # URL of the removed page
    ]
)

_PREFIX_DIGITS = 13  # fixed-width numeric prefix of node keys, so string order = preference order
_PREFIX_MAX = 10**_PREFIX_DIGITS - 1


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


def row_weight(row: dict) -> int:
    """How many input pages a row stands for: its ``dup_count`` when present and >= 1, else 1."""
    w = row.get("dup_count")
    return int(w) if isinstance(w, int) and w >= 1 else 1


def node_key(row: dict, keep: str = "longest") -> str:
    """The graph node of a page: ``<13-digit preference>|<id>|<weight>``.

    String order = preference order (the smallest node of a component is kept); the weight
    rides along so component sizes need no join.
    """
    if keep == "longest":
        n = row.get("num_chars")
        n = n if isinstance(n, int) and n >= 0 else len(row.get("text") or "")
        prefix = _PREFIX_MAX - min(n, _PREFIX_MAX)
    elif keep == "newest":
        epoch = fetch_epoch(row.get("fetch_time"))
        prefix = _PREFIX_MAX - min(max(int(epoch), 0), _PREFIX_MAX) if epoch is not None else _PREFIX_MAX
    elif keep == "min_id":
        prefix = 0
    else:
        raise ValueError(f"keep must be one of {KEEP_POLICIES}, got {keep!r}")
    return f"{prefix:0{_PREFIX_DIGITS}d}|{row['id']}|{row_weight(row)}"


def parse_node(node: str) -> tuple[str, int]:
    """``(id, weight)`` of a node key."""
    ident, weight = node[_PREFIX_DIGITS + 1:].rsplit("|", 1)
    return ident, int(weight)


def removed_record(ident: str, kept_id: str, reason: str, url: str | None) -> dict:
    return {"id": ident, "kept_id": kept_id, "reason": reason, "url": url}


# ------------------------------------------------------------------------- validation
class _ValidateFn(beam.DoFn):
    REJECTS = "rejects"

    def process(self, row):
        ident = row.get("id")
        if not isinstance(ident, str) or not ident.strip():
            _count("rejected:missing_id")
            yield beam.pvalue.TaggedOutput(
                self.REJECTS, make_reject(STAGE, row.get("warc_path") or "", row.get("warc_offset") or -1,
                                          row.get("url"), "missing_id", "row has no id")
            )
            return
        text = row.get("text")
        if text is not None and not isinstance(text, str):
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            row = {**row, "text": text}
        _count("input_rows")
        yield row


class ValidateRows(beam.PTransform):
    """Rows -> ``{"rows": valid rows, "rejects": REJECT_SCHEMA rows}`` (a row without ``id`` is rejected)."""

    def expand(self, rows):
        out = rows | "Check" >> beam.ParDo(_ValidateFn()).with_outputs(_ValidateFn.REJECTS, main="rows")
        return {"rows": out.rows, "rejects": out[_ValidateFn.REJECTS]}


# ------------------------------------------------------------------------- URL dedup
def url_group_key(row: dict) -> str:
    """The URL-dedup key of a row: its normalised URL, or ``id:<id>`` when it has no usable URL."""
    url = row.get("url")
    if not url:
        _count("url_missing")
        return "id:" + row["id"]
    try:
        return "url:" + normalize_url(url)
    except ValueError:
        _count("url_unparsable")
        return "id:" + row["id"]


class NewestFetchFn(beam.CombineFn):
    """Keeps the row with the smallest ``fetch_rank`` and sums the weights: O(1) memory per key."""

    def create_accumulator(self):
        return (None, None, 0)  # (rank, row, total weight)

    def add_input(self, acc, row):
        rank, best, total = acc
        r = fetch_rank(row)
        if best is None or r < rank:
            rank, best = r, row
        return (rank, best, total + row_weight(row))

    def merge_accumulators(self, accs):
        rank, best, total = None, None, 0
        for r, row, t in accs:
            total += t
            if row is not None and (best is None or r < rank):
                rank, best = r, row
        return (rank, best, total)

    def extract_output(self, acc):
        _, row, total = acc
        return {**row, "dup_count": total}


def _url_removals(element):
    """For one URL group of ``(rank, id, url)``: a removal for every member but the winner.

    Two passes over the grouped values (minimum, then emission); nothing is copied.
    """
    _, members = element
    winner = min(members, key=lambda m: m[0])
    skipped = False
    for rank, ident, url in members:
        if not skipped and rank == winner[0]:
            skipped = True  # the winner itself (an identical repeated row is removed)
            continue
        _count("removed:url")
        yield removed_record(ident, winner[1], REASON_URL, url)


class DedupUrls(beam.PTransform):
    """One page per normalised URL: the newest fetch (ties: smallest id, warc_path, warc_offset).

    Returns ``{"kept": rows with dup_count, "removed": REMOVED_SCHEMA dicts}``.
    """

    def expand(self, rows):
        keyed = rows | "KeyByNormalizedUrl" >> beam.Map(lambda r: (url_group_key(r), r))
        kept = (
            keyed
            | "NewestFetchPerUrl" >> beam.CombinePerKey(NewestFetchFn())
            | "DropUrlKey" >> beam.Values()
        )
        removed = (
            keyed
            | "RankOnly" >> beam.Map(lambda kv: (kv[0], (fetch_rank(kv[1]), kv[1]["id"], kv[1].get("url"))))
            | "GroupByUrl" >> beam.GroupByKey()
            | "RemovalsPerUrl" >> beam.FlatMap(_url_removals)
        )
        return {"kept": kept, "removed": removed}


# ------------------------------------------------------------------------- near-duplicates
class _BandKeysFn(beam.DoFn):
    """A batch of rows -> ``(bucket key, node)`` for every band of every page with shingles,
    and (tagged ``fingerprints``) ``(node, shingle fingerprint)`` for every such page."""

    NO_SHINGLES = "no_shingles"
    FINGERPRINTS = "fingerprints"

    def __init__(self, config: MinHashConfig, keep: str):
        self.config = config
        self.keep = keep
        self.hasher = None

    def setup(self):
        self.hasher = MinHasher(self.config)

    def process(self, batch: list[dict]):
        texts = [r.get("text") or "" for r in batch]
        hashes = [shingle_hashes(t, self.config.shingle_size) for t in texts]
        sigs = self.hasher.signatures_from_hashes(hashes)
        _count("signatures", len(batch))
        for row, h, sig in zip(batch, hashes, sigs):
            if not len(h):
                _count("near_dup_skipped:no_shingles")
                yield beam.pvalue.TaggedOutput(self.NO_SHINGLES, 1)
                continue
            node = node_key(row, self.keep)
            yield beam.pvalue.TaggedOutput(self.FINGERPRINTS, (node, shingle_fingerprint(h)))
            for key in self.hasher.band_keys(sig):
                yield (key, node)


def _child_ids(child_root):
    child, root = child_root
    return (parse_node(child)[0], parse_node(root)[0])


def _credit(child_root):
    child, root = child_root
    return (parse_node(root)[0], parse_node(child)[1])


def _apply_components(element):
    """Join on page id of the row, its component root (if removed) and the weight it absorbs."""
    ident, grouped = element
    rows, roots, credits = grouped["row"], grouped["root"], grouped["credit"]
    root = next(iter(roots), None)
    for row in rows:  # exactly one row per id after URL dedup
        if root is not None:
            _count("removed:near_dup")
            yield beam.pvalue.TaggedOutput("removed", removed_record(ident, root, REASON_NEAR_DUP, row.get("url")))
        else:
            absorbed = sum(credits)
            _count("kept")
            yield {**row, "dup_count": row_weight(row) + absorbed}


class DedupNearDuplicates(beam.PTransform):
    """MinHash LSH candidates -> exact-Jaccard verification -> connected components -> one page each.

    Input: rows with distinct ids (``DedupUrls`` output). Returns ``{"kept", "removed",
    "children" (child id -> root id), "violations", "no_shingles", "candidates", "edges"
    (verified)}``. ``neighbours``: how many of a bucket's smallest members each member is
    checked against (see ``verify.bucket_candidate_edges``).
    """

    def __init__(self, config: MinHashConfig | None = None, keep: str = "longest", cc_rounds: int = 12,
                 batch_size: int = 256, neighbours: int = 3):
        super().__init__()
        config = config or MinHashConfig()
        if keep not in KEEP_POLICIES:
            raise ValueError(f"keep must be one of {KEEP_POLICIES}, got {keep!r}")
        if neighbours < 1:
            raise ValueError("neighbours must be >= 1")
        self.neighbours = neighbours
        self.config = config
        self.keep = keep
        self.cc_rounds = cc_rounds
        self.batch_size = batch_size

    def expand(self, rows):
        bands = (
            rows
            | "Batch" >> beam.BatchElements(min_batch_size=min(16, self.batch_size), max_batch_size=self.batch_size)
            | "MinHashBands" >> beam.ParDo(_BandKeysFn(self.config, self.keep)).with_outputs(
                _BandKeysFn.NO_SHINGLES, _BandKeysFn.FINGERPRINTS, main="entries")
        )
        candidates = bands.entries | "BucketCandidates" >> BucketCandidateEdges(self.neighbours)
        edges = candidates | "VerifyEdges" >> VerifyEdges(bands[_BandKeysFn.FINGERPRINTS], self.config.threshold)
        cc = edges | "Components" >> ConnectedComponents(self.cc_rounds)
        children = cc["children"] | "ChildIds" >> beam.Map(_child_ids)
        credits = cc["children"] | "CreditRoot" >> beam.Map(_credit) | "SumCredits" >> beam.CombinePerKey(sum)
        out = (
            {
                "row": rows | "KeyById" >> beam.Map(lambda r: (r["id"], r)),
                "root": children,
                "credit": credits,
            }
            | "JoinById" >> beam.CoGroupByKey()
            | "KeepOrRemove" >> beam.FlatMap(_apply_components).with_outputs("removed", main="kept")
        )
        return {
            "kept": out.kept,
            "removed": out.removed,
            "children": children,
            "violations": cc["violations"],
            "no_shingles": bands[_BandKeysFn.NO_SHINGLES],
            "candidates": candidates,
            "edges": edges,
        }


def _resolve_kept_ids(element):
    """URL removals whose winner was then removed as a near-duplicate point to the final page.

    Grouped by the URL winner's id; values are ``("root", id)`` or ``("removed", record)``.
    Two passes (find the root, then emit); nothing is copied.
    """
    _, values = element
    root = next((v for tag, v in values if tag == "root"), None)
    for tag, record in values:
        if tag == "removed":
            yield record if root is None else {**record, "kept_id": root}


class ResolveKeptIds(beam.PTransform):
    """Rewrites ``kept_id`` of URL removals through the near-duplicate ``child -> root`` map."""

    def __init__(self, children):
        super().__init__()
        self.children = children

    def expand(self, url_removed):
        tagged_removed = url_removed | "ByKeptId" >> beam.Map(lambda r: (r["kept_id"], ("removed", r)))
        tagged_roots = self.children | "RootTag" >> beam.Map(lambda kv: (kv[0], ("root", kv[1])))
        return (
            (tagged_removed, tagged_roots)
            | "Flatten" >> beam.Flatten()
            | "GroupByKeptId" >> beam.GroupByKey()
            | "Resolve" >> beam.FlatMap(_resolve_kept_ids)
        )


def cluster_size_bin(n: int) -> str:
    """Histogram bin of a cluster size: "1", "2", "3-4", "5-8", "9-16", ... (powers of two)."""
    if n <= 2:
        return str(max(n, 1))
    hi = 1 << (n - 1).bit_length()
    return f"{hi // 2 + 1}-{hi}"


def sort_bins(bins: Iterable[str]) -> list[str]:
    return sorted(bins, key=lambda b: int(b.split("-")[0]))
