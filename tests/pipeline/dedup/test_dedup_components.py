"""Connected components: the pure reference, the Beam transform, and bounded memory on huge groups."""
from __future__ import annotations

import random
import tracemalloc
from itertools import pairwise

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.dedup.components import (
    ConnectedComponents,
    connected_components,
    is_star_forest,
    large_star_node,
    small_star_node,
)
from pipeline.dedup.transforms import _resolve_kept_ids, url_group_decisions
from pipeline.dedup.verify import BucketCandidateEdges, _AttachSmallerFn, _VerifyFn, bucket_candidate_edges


def union_find_labels(edges) -> dict:
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


@pytest.mark.parametrize("seed", range(5))
def test_reference_matches_union_find_on_random_graphs(seed):
    rng = random.Random(seed)
    n = 300
    edges = [(f"n{rng.randrange(n):04d}", f"n{rng.randrange(n):04d}") for _ in range(200)]
    labels, rounds = connected_components(edges)
    expected = {k: v for k, v in union_find_labels(edges).items() if any(k in e for e in edges if e[0] != e[1])}
    assert labels == {k: v for k, v in expected.items() if k in labels}
    assert set(labels) == {x for a, b in edges if a != b for x in (a, b)}
    assert rounds <= 8


def test_transitive_chain_is_one_component_rooted_at_its_minimum():
    chain = [f"{i:03d}" for i in random.Random(1).sample(range(1000), 50)]
    edges = list(pairwise(chain))  # A~B, B~C, ...: only neighbours are linked
    labels, rounds = connected_components(edges)
    assert set(labels.values()) == {min(chain)}
    assert rounds > 3  # a chain needs several rounds: the test exercises the iteration


def test_star_forest_check():
    assert is_star_forest([("a", "b"), ("a", "c"), ("d", "e")])
    assert not is_star_forest([("a", "b"), ("b", "c")])  # b is a child and a centre
    assert not is_star_forest([("a", "c"), ("b", "c")])  # c has two centres


GROUP = 15_000  # members of the artificial hot groups
FP, FP_HALF, FP_NONE = (np.arange(a, b, dtype="<u4").tobytes() for a, b in [(0, 300), (100, 400), (1000, 1300)])


class LazyGroup:
    """A re-iterable group of ``n`` values generated on the fly, like a paged Beam group."""

    def __init__(self, n: int, make):
        self.n, self.make = n, make

    def __iter__(self):
        return (self.make(i) for i in range(self.n))


@pytest.mark.parametrize(
    "fn, group",
    [
        (lambda g: bucket_candidate_edges(g, 3), LazyGroup(GROUP, lambda i: f"node{(i * 7919) % GROUP:07d}")),
        (lambda g: _AttachSmallerFn().process(("u", g)),
         LazyGroup(GROUP, lambda i: (0, b"\x01" * 1200) if i == GROUP // 2 else (1, f"node{i:07d}"))),
        (lambda g: _VerifyFn(0.5).process(("v", g)),  # half of the edges pass: Jaccard 1/2 or 0
         LazyGroup(GROUP, lambda i: (0, FP) if i == 7 else (1, (f"u{i}", FP_HALF if i % 2 else FP_NONE)))),
        (lambda g: large_star_node(f"node{GROUP // 2:07d}", g), LazyGroup(GROUP, lambda i: f"node{i:07d}")),
        (lambda g: small_star_node("node9999999", g), LazyGroup(GROUP, lambda i: f"node{i:07d}")),
        (lambda g: url_group_decisions(("k", g)),
         LazyGroup(GROUP, lambda i: ((0, -float(i % 977), f"id{i}", "f", i), "f", i, f"id{i}", "u", 1))),
        (lambda g: _resolve_kept_ids(("k", g)),
         LazyGroup(GROUP, lambda i: ("root", "r") if i == GROUP * 4 // 5 else ("removed", {"id": str(i), "kept_id": "k"}))),
    ],
)
def test_group_steps_stream_without_materialising(fn, group):
    """Every per-group step of the stage holds O(1) memory on a 15,000-member group."""
    tracemalloc.start()
    emitted = 0
    for _ in fn(group):
        emitted += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert emitted >= GROUP // 3
    assert peak < 100_000  # bytes: a list of the group alone would take 120 kB of pointers


def test_beam_components_match_reference():
    rng = random.Random(3)
    members = sorted({(f"b{rng.randrange(60)}", f"n{rng.randrange(400):04d}") for _ in range(600)})
    # reference: each member linked to the bucket's 2 smallest members, then components
    buckets: dict = {}
    for b, n in members:
        buckets.setdefault(b, set()).add(n)
    ref_edges = {(s, n) for ns in buckets.values() for s in sorted(ns)[:2] for n in ns if s < n}
    labels, _ = connected_components(ref_edges)
    expected_children = sorted((n, r) for n, r in labels.items() if n != r)
    with beam.Pipeline(runner="FnApiRunner") as p:
        cc = p | beam.Create(members) | BucketCandidateEdges(2) | ConnectedComponents(rounds=6)
        assert_that(cc["children"], equal_to(expected_children), label="children")
        assert_that(cc["violations"], equal_to([0]), label="converged")


def test_beam_components_report_non_convergence():
    path = [f"{i:04d}" for i in range(64)]  # a sorted path needs 7+ rounds
    with beam.Pipeline(runner="FnApiRunner") as p:
        cc = p | beam.Create(list(pairwise(path))) | ConnectedComponents(rounds=1)
        assert_that(cc["violations"] | beam.Map(lambda v: v > 0), equal_to([True]))
