"""Candidate edges from LSH buckets, and their verification by exact shingle Jaccard.

Method
------
1. **Candidates** (``BucketCandidateEdges``). The members of one LSH bucket (node keys, whose
   string order is the preference order, see ``transforms.node_key``) are linked to the
   bucket's ``neighbours`` smallest members (default 3): member ``v`` gets an edge to each of
   those smaller than itself. A bucket of ``n`` members gives at most ``neighbours * n``
   edges, never the ``n (n - 1) / 2`` pairs, and within a bucket of at most
   ``neighbours + 1`` members every pair is a candidate. Linking to several small members,
   not only the minimum, matters once edges are verified: with a plain star, two similar
   members of a bucket whose minimum is similar to neither would lose their edge in that
   bucket. A similar pair is missed only when, in *every* bucket it shares, both pages rank
   after the ``neighbours`` smallest members and neither is similar to them (a true pair at
   the 0.7 threshold shares 7.7 of 32 bands on average). The grouped values are read twice
   (a bounded heap of the smallest, then emission) and never copied: a bucket with millions
   of members is streamed. ``Distinct`` removes the repeats of a pair found in several bands.
2. **Verification** (``VerifyEdges``). Every page with shingles has a fingerprint, its shingle
   hash set (``minhash.shingle_fingerprint``, 4 bytes per distinct shingle), cut to its
   ``fingerprint_hashes`` smallest hashes (default 512, a bottom-k sketch: at most 2 kB per
   page however long it is, so the edges that carry it stay small). Two joins on the
   node, each a ``GroupByKey`` of tagged values read twice (find the one fingerprint, then
   stream the edges; never a list): the first attaches the smaller end's fingerprint to each
   edge, the second computes the exact Jaccard with the larger end's fingerprint and keeps
   the edge when it is >= ``threshold``. A hot node (the minimum of a million-member
   bucket) streams its million edges; each node holds one fingerprint in memory.

Precision is exact for pages of at most 512 distinct shingles (an edge is kept only when its
two pages are near-duplicates); for longer pages the Jaccard is the bottom-k estimate, standard
error 0.02 at the 0.7 threshold (``--fingerprint_hashes 0`` keeps every hash: exact, but each
edge then carries the whole set, ~7 kB on the benchmark pool, and dedup's memory grew 3.7x as
fast with the pool). Pages of
one connected component can still be less similar than the threshold to each other through
a chain (A~B, B~C), as with every connected-components dedup. Recall is the LSH S-curve at
the threshold (0.9998 for 32 x 4 bands at 0.7) times the small loss described in 1.

Cost: the fingerprints are shuffled twice (at most 2 kB per page); candidate edges carry the
smaller end's fingerprint once each.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics.metric import Metrics

from pipeline.dedup.minhash import fingerprint_jaccard

NAMESPACE = "dedup"
_FINGERPRINT = 0  # tag of a node's fingerprint in a join
_EDGE = 1  # tag of an edge (or half-verified edge) in a join


def bucket_candidate_edges(members: Iterable, neighbours: int = 3) -> Iterator[tuple]:
    """``(s, v)`` for every member ``v`` and each of the bucket's ``neighbours`` smallest members ``s < v``.

    ``members`` must be re-iterable (it is read twice: once for the smallest, once to emit);
    nothing but ``neighbours`` members is held. Members are distinct (a page has one node and
    the bucket key includes the band index).
    """
    if neighbours < 1:
        raise ValueError("neighbours must be >= 1")
    smallest = heapq.nsmallest(neighbours, members)
    for v in members:
        for s in smallest:
            if s < v:
                yield (s, v)


class _BucketCandidatesFn(beam.DoFn):
    def __init__(self, neighbours: int):
        self.neighbours = neighbours
        self.buckets = Metrics.counter(NAMESPACE, "lsh_buckets")
        self.shared = Metrics.counter(NAMESPACE, "lsh_buckets_shared")
        self.sizes = Metrics.distribution(NAMESPACE, "lsh_bucket_size")

    def process(self, element):
        _, members = element
        self.buckets.inc()
        n = 0
        for edge in bucket_candidate_edges(members, self.neighbours):
            n += 1
            yield edge
        if n:
            self.shared.inc()
            self.sizes.update(n)


class BucketCandidateEdges(beam.PTransform):
    """``(bucket_key, node)`` -> distinct candidate ``(smaller, larger)`` edges (see ``bucket_candidate_edges``)."""

    def __init__(self, neighbours: int = 3):
        super().__init__()
        if neighbours < 1:
            raise ValueError("neighbours must be >= 1")
        self.neighbours = neighbours

    def expand(self, entries):
        return (
            entries
            | "GroupByBucket" >> beam.GroupByKey()
            | "LinkToSmallest" >> beam.ParDo(_BucketCandidatesFn(self.neighbours))
            | "DistinctCandidates" >> beam.Distinct()
        )


def _fingerprint_of(values) -> bytes | None:
    return next((v for tag, v in values if tag == _FINGERPRINT), None)


class _AttachSmallerFn(beam.DoFn):
    """Per smaller end ``u``: ``(v, (u, fingerprint of u))`` for each of its edges ``(u, v)``."""

    def __init__(self):
        self.missing = Metrics.counter(NAMESPACE, "verify_missing_fingerprint")

    def process(self, element):
        u, values = element
        fp = _fingerprint_of(values)
        for tag, v in values:
            if tag == _EDGE:
                if fp is None:  # cannot happen for nodes from the band keys; counted, not crashed
                    self.missing.inc()
                    continue
                yield (v, (u, fp))


class _VerifyFn(beam.DoFn):
    """Per larger end ``v``: ``(u, v)`` for each half-edge whose exact Jaccard is >= the threshold."""

    def __init__(self, threshold: float, max_hashes: int = 0):
        self.threshold = threshold
        self.max_hashes = max_hashes
        self.kept = Metrics.counter(NAMESPACE, "verified_edges")
        self.dropped = Metrics.counter(NAMESPACE, "rejected_edges")
        self.missing = Metrics.counter(NAMESPACE, "verify_missing_fingerprint")

    def process(self, element):
        v, values = element
        fp = _fingerprint_of(values)
        for tag, half in values:
            if tag != _EDGE:
                continue
            if fp is None:
                self.missing.inc()
                continue
            u, fp_u = half
            if fingerprint_jaccard(fp_u, fp, self.max_hashes) >= self.threshold:
                self.kept.inc()
                yield (u, v)
            else:
                self.dropped.inc()


class VerifyEdges(beam.PTransform):
    """Candidate ``(u, v)`` edges -> the edges whose pages have exact shingle Jaccard >= ``threshold``.

    ``fingerprints``: ``(node, shingle_fingerprint bytes)`` for every node that can appear in
    an edge (one per node), made with ``max_hashes`` (``MinHashConfig.fingerprint_hashes``).
    """

    def __init__(self, fingerprints, threshold: float, max_hashes: int = 0):
        super().__init__()
        self.fingerprints = fingerprints
        self.threshold = threshold
        self.max_hashes = max_hashes

    def expand(self, candidates):
        tagged_fps = self.fingerprints | "TagFingerprints" >> beam.Map(lambda kv: (kv[0], (_FINGERPRINT, kv[1])))
        halves = (
            (tagged_fps, candidates | "BySmaller" >> beam.Map(lambda e: (e[0], (_EDGE, e[1]))))
            | "FlattenSmaller" >> beam.Flatten()
            | "GroupBySmaller" >> beam.GroupByKey()
            | "AttachSmaller" >> beam.ParDo(_AttachSmallerFn())
        )
        return (
            (tagged_fps, halves | "TagHalves" >> beam.Map(lambda kv: (kv[0], (_EDGE, kv[1]))))
            | "FlattenLarger" >> beam.Flatten()
            | "GroupByLarger" >> beam.GroupByKey()
            | "Verify" >> beam.ParDo(_VerifyFn(self.threshold, self.max_hashes))
        )
