"""Connected components of the near-duplicate graph, computed inside the Beam pipeline.

Method
------
Nodes are strings whose order decides the representative (see ``transforms.node_key``).

1. **Edges.** The verified near-duplicate edges (``verify.py``: candidates from LSH buckets,
   each member linked to a few of the bucket's smallest members, kept when the exact Jaccard
   reaches the threshold).
2. **Large-star / small-star rounds** (Kiveris et al., "Connected Components in MapReduce
   and Beyond", SoCC 2014), unrolled ``rounds`` times:

   * large-star: for each node ``u`` with neighbours ``N(u)`` and ``m = min(N(u) + [u])``,
     replace every edge ``(u, v)`` with ``v > u`` by ``(v, m)``;
   * small-star: for each node ``u`` with smaller neighbours ``S(u)`` and ``m = min(S(u))``,
     replace ``u``'s edges by ``(v, m)`` for ``v`` in ``S(u) + [u]``.

   Each step keeps the connected components unchanged; their fixpoint is a forest of stars
   centred on each component's smallest node, reached in O(log^2 n) rounds (in practice
   about log n: a 10,000-node path needs 14 rounds, a random graph 5). ``StarForestCheck``
   verifies the fixpoint exactly (every node has at most one smaller neighbour and a centre
   has none); the pipeline reruns with more rounds when a graph needed more.

Memory
------
Every step is one ``GroupByKey`` whose values are iterated (twice: once for the minimum,
once to emit edges) and never copied into a list, so a node with millions of neighbours
is streamed; Beam's runners page large groups in from shuffle (Dataflow: re-iterable
state-backed iterables). Duplicate edges are removed after every round with ``Distinct``.
The pure functions ``large_star``/``small_star``/``connected_components`` are the reference
implementation used by the tests.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

import apache_beam as beam

NAMESPACE = "dedup"
Edge = tuple[str, str]  # (smaller node, larger node)


# ---------------------------------------------------------------- pure reference functions
def normalize_edges(edges: Iterable[tuple]) -> set[tuple]:
    """Edges as a set of ``(smaller, larger)`` pairs without self-loops."""
    return {(min(a, b), max(a, b)) for a, b in edges if a != b}


def large_star_node(u, neighbours: Iterable) -> Iterator[tuple]:
    """Large-star for one node: ``(m, v)`` for every neighbour ``v > u``, ``m`` the closed-neighbourhood min."""
    m = min(u, min(neighbours, default=u))
    for v in neighbours:
        if v > u:
            yield (m, v)


def small_star_node(u, smaller: Iterable) -> Iterator[tuple]:
    """Small-star for one node: link ``u`` and its smaller neighbours to their minimum."""
    m = min(smaller, default=u)
    if m != u:
        yield (m, u)
    for v in smaller:
        if v != m:
            yield (m, v)


def large_star(edges: Iterable[tuple]) -> set[tuple]:
    neighbours: dict = defaultdict(list)
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    return normalize_edges(e for u, ns in neighbours.items() for e in large_star_node(u, ns))


def small_star(edges: Iterable[tuple]) -> set[tuple]:
    smaller: dict = defaultdict(list)
    for a, b in normalize_edges(edges):
        smaller[b].append(a)
    return normalize_edges(e for u, ns in smaller.items() for e in small_star_node(u, ns))


def is_star_forest(edges: Iterable[tuple]) -> bool:
    """True when every node has at most one smaller neighbour and no centre has a smaller one."""
    edges = normalize_edges(edges)
    children: dict = defaultdict(int)
    for _, b in edges:
        children[b] += 1
    return all(c == 1 for c in children.values()) and not any(a in children for a, _ in edges)


def connected_components(edges: Iterable[tuple], max_rounds: int = 64) -> tuple[dict, int]:
    """``({node: smallest node of its component}, rounds)`` by alternating large/small-star.

    ``rounds`` counts the rounds until the fixpoint (the last round changes nothing).
    """
    current = normalize_edges(edges)
    for rounds in range(1, max_rounds + 1):
        nxt = small_star(large_star(current))
        if nxt == current:
            break
        current = nxt
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    labels = {}
    for a, b in current:
        labels[a] = a
        labels[b] = a
    return labels, rounds


# ---------------------------------------------------------------- Beam transforms
def _both_directions(edge: Edge):
    a, b = edge
    yield (a, b)
    yield (b, a)


def _large_star(element):
    u, neighbours = element
    for m, v in large_star_node(u, neighbours):
        yield (v, m)  # keyed by the larger endpoint for small-star


def _small_star(element):
    u, smaller = element
    return small_star_node(u, smaller)


class StarRound(beam.PTransform):
    """One large-star step then one small-star step on distinct ``(smaller, larger)`` edges."""

    def expand(self, edges):
        return (
            edges
            | "BothDirections" >> beam.FlatMap(_both_directions)
            | "GroupNeighbours" >> beam.GroupByKey()
            | "LargeStar" >> beam.FlatMap(_large_star)
            | "GroupSmallerNeighbours" >> beam.GroupByKey()
            | "SmallStar" >> beam.FlatMap(_small_star)
            | "Distinct" >> beam.Distinct()
        )


class _ChildCount(beam.CombineFn):
    """Per node: (edges in which it is the larger endpoint, capped at 2; is it a smaller endpoint)."""

    def create_accumulator(self):
        return (0, False)

    def add_input(self, acc, value):
        return (min(2, acc[0] + value[0]), acc[1] or value[1])

    def merge_accumulators(self, accs):
        n, parent = 0, False
        for a, p in accs:
            n, parent = min(2, n + a), parent or p
        return (n, parent)

    def extract_output(self, acc):
        return acc


class StarForestCheck(beam.PTransform):
    """The number of nodes that violate the star-forest fixpoint (0 means converged), as a singleton."""

    def expand(self, edges):
        return (
            edges
            | "Roles" >> beam.FlatMap(lambda e: [(e[1], (1, False)), (e[0], (0, True))])
            | "PerNode" >> beam.CombinePerKey(_ChildCount())
            | "Violations" >> beam.Map(lambda kv: int(kv[1][0] > 1 or (kv[1][0] == 1 and kv[1][1])))
            | "Sum" >> beam.CombineGlobally(sum)
        )


class ConnectedComponents(beam.PTransform):
    """Distinct edges -> ``(node, component minimum)`` for every non-minimum node, plus a check.

    Returns a dict: ``"children"`` (PCollection of ``(node, root)``) and ``"violations"``
    (singleton PCollection: 0 when ``rounds`` reached the fixpoint).
    """

    def __init__(self, rounds: int):
        super().__init__()
        if rounds < 1:
            raise ValueError("rounds must be >= 1")
        self.rounds = rounds

    def expand(self, edges):
        for i in range(self.rounds):
            edges = edges | f"Round{i + 1:02d}" >> StarRound()
        violations = edges | "CheckFixpoint" >> StarForestCheck()
        children = edges | "ChildToRoot" >> beam.Map(lambda e: (e[1], e[0]))
        return {"children": children, "violations": violations}
