"""The dedup stage's composite transforms: ``DedupUrls``, ``DedupNearDuplicates``, ``ResolveKeptIds``.

They work on small per-page records (metadata, band keys, fingerprints, decisions), never on
rows: the rows are read from the input files and written out by ``shards`` (see there). Every
page leaves the stage exactly once: kept (with ``dup_count``), removed (a ``REMOVED_SCHEMA``
row naming the kept page and the reason) or rejected (a ``REJECT_SCHEMA`` row). ``dup_count``
of a kept page is the number of input pages it stands for: itself, its URL duplicates and the
pages of its near-duplicate component (an input row that already has ``dup_count`` counts as
that many, so deduplicating deduplicated shards composes).

Representative of a near-duplicate component (``keep``): ``longest`` (default: most
characters of text), ``newest`` (latest fetch) or ``min_id``; ties by the smallest ``id``.
Near-duplicates: MinHash LSH band buckets give candidate edges (each member linked to the
bucket's few smallest members), every candidate is verified by the exact Jaccard of the two
pages' shingle sets (``verify``), and the verified edges' connected components
(``components``) are the clusters.
Transitive chains (A~B, B~C, A!~C) end in one component: one page is kept and the others
point to it, even those not similar to it themselves (as in datatrove, text-dedup and every
connected-components dedup).

Grouped values are iterated, never copied into lists (see ``components``); the decisions of
one input file are held together while that file is streamed (``shards.ApplyDecisionsFn``).
"""
from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import Metrics

from pipeline.dedup.components import NAMESPACE, ConnectedComponents
from pipeline.dedup.minhash import MinHashConfig
from pipeline.dedup.shards import CREDIT, DROP, NEAR, WEIGHT, MinHashFileFn
from pipeline.dedup.urls import fetch_epoch, normalize_url
from pipeline.dedup.verify import BucketCandidateEdges, VerifyEdges

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


def node_key(row: dict, keep: str, weight: int, file: str, index: int, text: str = "") -> str:
    """The graph node of a page: ``<13-digit preference>|<id>|<weight>|<file key>:<row index>``.

    String order = preference order (the smallest node of a component is kept; ids are unique
    after URL dedup, so the suffix never decides); the weight rides along so component sizes
    need no join, and the position says which file and row the node's decisions go to.
    """
    if keep == "longest":
        n = row.get("num_chars")
        n = n if isinstance(n, int) and n >= 0 else len(text or row.get("text") or "")
        prefix = _PREFIX_MAX - min(n, _PREFIX_MAX)
    elif keep == "newest":
        epoch = fetch_epoch(row.get("fetch_time"))
        prefix = _PREFIX_MAX - min(max(int(epoch), 0), _PREFIX_MAX) if epoch is not None else _PREFIX_MAX
    elif keep == "min_id":
        prefix = 0
    else:
        raise ValueError(f"keep must be one of {KEEP_POLICIES}, got {keep!r}")
    return f"{prefix:0{_PREFIX_DIGITS}d}|{row['id']}|{int(weight)}|{file}:{int(index)}"


def parse_node(node: str) -> tuple[str, int]:
    """``(id, weight)`` of a node key."""
    ident, weight, _ = node[_PREFIX_DIGITS + 1:].rsplit("|", 2)
    return ident, int(weight)


def node_position(node: str) -> tuple[str, int]:
    """``(file key, row index)`` of a node key."""
    file, index = node.rsplit("|", 1)[1].split(":")
    return file, int(index)


def removed_record(ident: str, kept_id: str, reason: str, url: str | None) -> dict:
    return {"id": ident, "kept_id": kept_id, "reason": reason, "url": url}


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


def url_group_decisions(element):
    """One URL group of ``shards.ReadMetadataFn`` members -> nothing when it has one member;
    else the winner's weight decision (the newest fetch stands for the group), a drop decision
    and (tagged ``removed``) a removal record for every other member. Decisions are
    ``(file key, (row index, kind, value))``. The grouped values are read twice, never copied."""
    _, members = element
    winner = min(members, key=lambda m: m[0])
    total, n = 0, 0
    for rank, file, index, ident, url, weight in members:
        total += weight
        n += 1
        if (file, index) != (winner[1], winner[2]):
            _count("removed:url")
            yield (file, (index, DROP, None))
            yield beam.pvalue.TaggedOutput("removed", removed_record(ident, winner[3], REASON_URL, url))
    if n > 1:
        yield (winner[1], (winner[2], WEIGHT, total))


class DedupUrls(beam.PTransform):
    """Metadata members keyed by URL group -> ``{"decisions", "removed"}`` (see ``url_group_decisions``):
    one page per normalised URL, the newest fetch (ties: smallest id, warc_path, warc_offset, position)."""

    def expand(self, keyed_members):
        out = (
            keyed_members
            | "GroupByUrl" >> beam.GroupByKey()
            | "UrlDecisions" >> beam.FlatMap(url_group_decisions).with_outputs("removed", main="decisions")
        )
        return {"decisions": out.decisions, "removed": out.removed}


# ------------------------------------------------------------------------- near-duplicates
def _child_ids(child_root):
    child, root = child_root
    return (parse_node(child)[0], parse_node(root)[0])


def _near_decision(child_root):
    child, root = child_root
    file, index = node_position(child)
    return (file, (index, NEAR, parse_node(root)[0]))


def _credit_decision(root_credit):
    root, absorbed = root_credit
    file, index = node_position(root)
    return (file, (index, CREDIT, absorbed))


class DedupNearDuplicates(beam.PTransform):
    """Files and their URL decisions -> MinHash LSH candidates -> exact-Jaccard verification ->
    connected components -> per-page decisions.

    Input: ``(file key, path)`` of every input file; ``url_decisions`` from ``DedupUrls`` (URL
    duplicates are left out of the graph, URL winners weigh their group). Returns ``{"decisions"
    (file key, (row index, "near" | "credit", value)), "children" (child id -> root id),
    "violations", "no_shingles", "candidates", "edges" (verified; both as counts)}``. ``neighbours``: how many of
    a bucket's smallest members each member is checked against (see ``verify.bucket_candidate_edges``).
    """

    def __init__(self, url_decisions, config: MinHashConfig | None = None, keep: str = "longest",
                 cc_rounds: int = 12, batch_size: int = 256, neighbours: int = 3):
        super().__init__()
        config = config or MinHashConfig()
        if keep not in KEEP_POLICIES:
            raise ValueError(f"keep must be one of {KEEP_POLICIES}, got {keep!r}")
        if neighbours < 1:
            raise ValueError("neighbours must be >= 1")
        self.url_decisions = url_decisions
        self.neighbours = neighbours
        self.config = config
        self.keep = keep
        self.cc_rounds = cc_rounds
        self.batch_size = batch_size

    def expand(self, files):
        bands = (
            {"path": files, "decision": self.url_decisions}
            | "UrlDecisionsPerFile" >> beam.CoGroupByKey()
            | "MinHashBands" >> beam.ParDo(MinHashFileFn(self.config, self.keep, node_key, self.batch_size)).with_outputs(
                MinHashFileFn.NO_SHINGLES, MinHashFileFn.FINGERPRINTS, main="entries")
        )
        candidates = bands.entries | "BucketCandidates" >> BucketCandidateEdges(self.neighbours)
        edges = candidates | "VerifyEdges" >> VerifyEdges(bands[MinHashFileFn.FINGERPRINTS], self.config.threshold,
                                                             self.config.fingerprint_hashes)
        cc = edges | "Components" >> ConnectedComponents(self.cc_rounds)
        credits = (cc["children"]
                   | "CreditRoot" >> beam.Map(lambda cr: (cr[1], parse_node(cr[0])[1]))
                   | "SumCredits" >> beam.CombinePerKey(sum)
                   | "CreditDecisions" >> beam.Map(_credit_decision))
        near = cc["children"] | "NearDecisions" >> beam.Map(_near_decision)
        return {
            "decisions": (near, credits) | "NearAndCredits" >> beam.Flatten(),
            "children": cc["children"] | "ChildIds" >> beam.Map(_child_ids),
            "violations": cc["violations"],
            "no_shingles": bands[MinHashFileFn.NO_SHINGLES],
            "candidates": candidates | "CountCandidates" >> beam.combiners.Count.Globally(),
            "edges": edges | "CountEdges" >> beam.combiners.Count.Globally(),
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
