"""Near-duplicates with the per-page records exchanged through sorted run files, not shuffles.

``NearDuplicatesOnFiles`` finds the same near-duplicate components as ``DedupNearDuplicates``
(same band keys, candidate rule, verification and representative), but its per-page records
(LSH band entries, fingerprints, candidate and verified edges, decisions) go through sorted run
files under a scratch folder (``runs``) instead of Beam shuffles. Beam's local runners
(FnApiRunner, its multi-processing mode, the embedded portable runner) hold every shuffle in
memory, so with shuffles a local run needs memory in proportion to its pages; with the file
exchange each step streams merged runs and holds a bounded buffer, and a local run's memory
stays flat as its input grows (``benchmarks/chain.py``). Dataflow and Spark spill shuffles
themselves: there the shuffle exchange (with the distributed star rounds of ``components``)
is the default (``--exchange auto``).

Steps, each a Beam step over work units, each starting after the previous has finished:

1. per input file (``MinHashToRunsFn``): the MinHash pass of ``shards.MinHashFileFn``; band
   entries ``(band key, node)`` go to the band's runs, fingerprints ``(node, fp)`` to the
   runs of the node's partition;
2. per band (``BandCandidatesFn``): the band's runs merged in ``(band key, node)`` order, so
   each bucket's members arrive smallest first: member ``v`` is linked to the bucket's first
   ``neighbours`` members (``verify.bucket_candidate_edges``, streamed); edges go to the runs of
   their smaller end's partition;
3. per partition (``AttachSmallerFn``): candidates merged in order (repeats from several bands
   are adjacent and dropped) and joined with the partition's fingerprints by a merge join; the
   half-edge ``(v, u, fp of u)`` goes to the runs of ``v``'s partition;
4. per partition (``VerifyRunsFn``): half-edges joined with the fingerprints of ``v``; the
   edge is kept when the Jaccard reaches the threshold (``minhash.fingerprint_jaccard``);
5. once (``ComponentsFn``): union-find over the verified edges, the smallest node of each
   component is its root; per input file, its rows' decisions go to that file's runs in row
   order, which ``shards.ApplyDecisionsFn`` streams beside the rows.

Memory: steps 1-4 hold bounded buffers and one chunk per open run, whatever the pool. Step 5
holds the nodes of the verified edges in one worker (a dict entry per near-duplicate page,
~0.3 kB): a pool with 10 million near-duplicate pages needs ~3 GB there; beyond that, use
``--exchange shuffle`` on a distributed runner. Disk: the band entries are the bulk, ~32
entries of ~100 bytes per page before compression.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import Metrics

from pipeline.beam_utils import join as _join
from pipeline.dedup.components import NAMESPACE
from pipeline.dedup.minhash import MinHashConfig, fingerprint_jaccard
from pipeline.dedup.runs import PartitionedRunWriter, list_runs, merge_runs, partition_of, read_run
from pipeline.dedup.shards import CREDIT, DROP, NEAR, REJECTS, WEIGHT, MinHashFileFn, ReadMetadataFn

MAX_PARTITIONS = 64


class RunLayout:
    """Where each kind of run lives under the scratch folder ``root``."""

    def __init__(self, root: str):
        self.root = root

    def urls(self, part: int) -> str:
        return _join(self.root, "urls", f"{part:04d}")

    def bands(self, band: int) -> str:
        return _join(self.root, "bands", f"{band:04d}")

    def fingerprints(self, part: int) -> str:
        return _join(self.root, "fingerprints", f"{part:04d}")

    def candidates(self, part: int) -> str:
        return _join(self.root, "candidates", f"{part:04d}")

    def halves(self, part: int) -> str:
        return _join(self.root, "halves", f"{part:04d}")

    def edges(self) -> str:
        return _join(self.root, "edges")

    def decisions(self, file: str) -> str:
        return _join(self.root, "decisions", file)

    def scratch(self, name: str) -> str:
        return _join(self.root, "scratch", name)


def without_held_decisions(file: tuple[str, str]) -> tuple[str, dict]:
    """``(file key, path)`` in the shape ``shards`` reads a file with its held decisions (none:
    with the file exchange, every decision is streamed from runs)."""
    return file[0], {"path": [file[1]], "decision": []}


def partitions_for(num_files: int) -> int:
    """Partitions of the fingerprints and edges: one per input file, at most ``MAX_PARTITIONS``."""
    return max(1, min(int(num_files), MAX_PARTITIONS))


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


class MetadataToRunsFn(ReadMetadataFn):
    """``shards.ReadMetadataFn`` whose ``(URL group key, member)`` records go to the runs of the
    group's partition; yields the file's number of valid rows (rejects as before)."""

    def __init__(self, url_group_key, layout: RunLayout):
        super().__init__(url_group_key)
        self.layout = layout

    def process(self, element, partitions: int):
        writer = PartitionedRunWriter(self.layout.urls, element[0])
        for out in super().process(element):
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield out
            else:
                writer.add(partition_of(out[0], partitions), out)
        yield writer.close()


class UrlGroupsFn(beam.DoFn):
    """partition -> its URL groups' decisions written to each file's decision runs, and a removal
    record per URL duplicate (``transforms.url_group_decisions``, streamed: a group's members
    arrive in fetch-rank order, so the first is the winner)."""

    def __init__(self, layout: RunLayout, removed_record, reason: str):
        self.layout, self.removed_record, self.reason = layout, removed_record, reason

    def process(self, part: int):
        writer = PartitionedRunWriter(lambda f: self.layout.decisions(f"{f:016x}"), f"urls-{part:04d}")
        group, winner, total, n = None, None, 0, 0

        def close_group():
            if n > 1:
                writer.add(int(winner[1], 16), (winner[2], WEIGHT, total))

        for key, member in merge_runs(list_runs(self.layout.urls(part)), self.layout.scratch(f"urls-{part:04d}")):
            if key != group:
                close_group()
                group, winner, total, n = key, member, 0, 0
            _, file, index, ident, url, weight = member
            total += weight
            n += 1
            if member is not winner:
                _count("removed:url")
                writer.add(int(file, 16), (index, DROP, None))
                yield self.removed_record(ident, winner[3], self.reason, url)
        close_group()
        writer.close()


class UrlsOnFiles(beam.PTransform):
    """``transforms.DedupUrls`` with the metadata in run files: ``(file key, path)`` files ->
    ``{"removed": URL removal records, "rejects", "input_rows" (counts), "done"}``; the decisions
    are in each file's decision runs (``RunLayout.decisions``) once ``done`` is complete."""

    def __init__(self, work_dir: str, url_group_key, removed_record, reason: str):
        super().__init__()
        self.layout = RunLayout(work_dir)
        self.url_group_key, self.removed_record, self.reason = url_group_key, removed_record, reason

    def expand(self, files):
        side = beam.pvalue.AsSingleton(files
                                       | "CountFiles" >> beam.combiners.Count.Globally()
                                       | "Partitions" >> beam.Map(partitions_for))
        meta = files | "MetadataToRuns" >> beam.ParDo(MetadataToRunsFn(self.url_group_key, self.layout),
                                                      side).with_outputs(REJECTS, main="rows")
        removed = (meta.rows
                   | "MetadataDone" >> beam.CombineGlobally(sum)
                   | "UrlUnits" >> beam.FlatMap(lambda _, p: range(p), side)
                   | "UrlSpread" >> beam.Reshuffle()
                   | "UrlGroups" >> beam.ParDo(UrlGroupsFn(self.layout, self.removed_record, self.reason)))
        done = (removed
                | "UrlDecisionsWritten" >> beam.combiners.Count.Globally()
                | "UrlsReady" >> beam.Map(lambda _: True))
        return {"removed": removed, "rejects": meta[REJECTS], "input_rows": meta.rows, "done": done}


class MinHashToRunsFn(MinHashFileFn):
    """``shards.MinHashFileFn`` whose band entries and fingerprints are written to runs; yields
    the file's number of nodes, and ``1`` tagged ``no_shingles`` per page without shingles."""

    def __init__(self, config: MinHashConfig, keep: str, node_key, batch_size: int, layout: RunLayout):
        super().__init__(config, keep, node_key, batch_size, layout.decisions)
        self.layout = layout

    def process(self, element, partitions: int, *_ready):
        key = element[0]
        bands = PartitionedRunWriter(self.layout.bands, key)
        fps = PartitionedRunWriter(self.layout.fingerprints, key)
        for out in super().process(element):
            if isinstance(out, beam.pvalue.TaggedOutput):
                if out.tag == self.FINGERPRINTS:
                    node, fp = out.value
                    fps.add(partition_of(node, partitions), (node, fp))
                else:
                    yield out
            else:
                band, node = out
                bands.add(band[0], (band, node))
        bands.close()
        yield fps.close()


class BandCandidatesFn(beam.DoFn):
    """band index -> candidate edges of its buckets written to runs; yields how many (repeats included)."""

    def __init__(self, layout: RunLayout, neighbours: int):
        self.layout, self.neighbours = layout, neighbours

    def process(self, band: int, partitions: int):
        writer = PartitionedRunWriter(self.layout.candidates, f"band-{band:04d}")
        bucket, smallest, buckets, shared = None, [], 0, 0
        for key, node in merge_runs(list_runs(self.layout.bands(band)), self.layout.scratch(f"band-{band:04d}")):
            if key != bucket:
                bucket, smallest = key, []
                buckets += 1
            elif len(smallest) == 1:
                shared += 1
            for s in smallest:  # all smaller than node: members arrive in node order
                writer.add(partition_of(s, partitions), (s, node))
            if len(smallest) < self.neighbours:
                smallest.append(node)
        _count("lsh_buckets", buckets)
        _count("lsh_buckets_shared", shared)
        yield writer.close()


def _merge_join(left, fingerprints):
    """``(record, fingerprint of record[0] or None)`` for each record of the sorted ``left``
    stream, from the sorted ``(node, fingerprint)`` stream."""
    fp_node, fp = None, None
    fps = iter(fingerprints)
    done = False
    for record in left:
        while not done and (fp_node is None or fp_node < record[0]):
            nxt = next(fps, None)
            if nxt is None:
                done, fp_node, fp = True, None, None
                break
            fp_node, fp = nxt
        yield record, (fp if fp_node == record[0] else None)


class AttachSmallerFn(beam.DoFn):
    """partition -> its distinct candidate edges, each with its smaller end's fingerprint, written
    as half-edges to the larger end's partition; yields the number of distinct candidates."""

    def __init__(self, layout: RunLayout):
        self.layout = layout

    def process(self, part: int, partitions: int):
        edges = merge_runs(list_runs(self.layout.candidates(part)), self.layout.scratch(f"candidates-{part:04d}"))
        fps = merge_runs(list_runs(self.layout.fingerprints(part)), self.layout.scratch(f"fps-a-{part:04d}"))
        writer = PartitionedRunWriter(self.layout.halves, f"from-{part:04d}")
        previous, distinct = None, 0

        def unique():
            nonlocal previous, distinct
            for edge in edges:
                if edge != previous:
                    previous = edge
                    distinct += 1
                    yield edge

        for (u, v), fp in _merge_join(unique(), fps):
            if fp is None:  # cannot happen for nodes from the band entries; counted, not crashed
                _count("verify_missing_fingerprint")
                continue
            writer.add(partition_of(v, partitions), (v, u, fp))
        writer.close()
        yield distinct


class VerifyRunsFn(beam.DoFn):
    """partition -> the verified edges ``(u, v)`` of its half-edges, written to runs; yields their number."""

    def __init__(self, layout: RunLayout, threshold: float, max_hashes: int):
        self.layout, self.threshold, self.max_hashes = layout, threshold, max_hashes

    def process(self, part: int):
        halves = merge_runs(list_runs(self.layout.halves(part)), self.layout.scratch(f"halves-{part:04d}"))
        fps = merge_runs(list_runs(self.layout.fingerprints(part)), self.layout.scratch(f"fps-b-{part:04d}"))
        writer = PartitionedRunWriter(lambda _: self.layout.edges(), f"part-{part:04d}")
        kept = dropped = 0
        for (v, u, fp_u), fp_v in _merge_join(halves, fps):
            if fp_v is None:
                _count("verify_missing_fingerprint")
                continue
            if fingerprint_jaccard(fp_u, fp_v, self.max_hashes) >= self.threshold:
                writer.add(0, (u, v))
                kept += 1
            else:
                dropped += 1
        writer.close()
        _count("verified_edges", kept)
        _count("rejected_edges", dropped)
        yield kept


def component_roots(edges) -> dict[str, str]:
    """``{node: smallest node of its component}`` for every node of ``edges`` (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for u, v in edges:
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        ru, rv = find(u), find(v)
        if ru != rv:
            if rv < ru:
                ru, rv = rv, ru
            parent[rv] = ru
    return {x: find(x) for x in parent}


class ComponentsFn(beam.DoFn):
    """(once) -> per input file, the near-duplicate and credit decisions of its rows written as
    runs in row order; yields ``(child id, root id)`` for each child weighing more than one page
    (a URL winner: its URL duplicates' removal records must point to the final page)."""

    def __init__(self, layout: RunLayout, parse_node, node_position):
        self.layout, self.parse_node, self.node_position = layout, parse_node, node_position

    def process(self, _):
        def edges():
            for path in list_runs(self.layout.edges()):
                yield from read_run(path)

        roots = component_roots(edges())
        credits: dict[str, int] = {}
        writer = PartitionedRunWriter(lambda f: self.layout.decisions(f"{f:016x}"), "components")
        for node, root in roots.items():
            if node == root:
                continue
            ident, weight = self.parse_node(node)
            root_id = self.parse_node(root)[0]
            file, index = self.node_position(node)
            writer.add(int(file, 16), (index, NEAR, root_id))
            credits[root] = credits.get(root, 0) + weight
            if weight > 1:
                yield (ident, root_id)
        for root, absorbed in credits.items():
            file, index = self.node_position(root)
            writer.add(int(file, 16), (index, CREDIT, absorbed))
        writer.close()


class NearDuplicatesOnFiles(beam.PTransform):
    """``transforms.DedupNearDuplicates`` with its per-page records in run files under ``work_dir``.

    Input: ``(file key, path)`` of every input file; ``urls_done``: ``UrlsOnFiles``'s ``done``
    (its decisions must be in the runs before the MinHash pass reads them). Returns
    ``{"children"`` (child id -> root id, only for children that are URL winners: all that
    ``ResolveKeptIds`` needs), ``"violations"`` (0: union-find is exact), ``"no_shingles"``,
    ``"candidates"``, ``"edges"`` (counts) and ``"done"``}``; every decision is then in the
    decision runs, for ``shards.ApplyDecisionsFn`` with ``done`` as a side input.
    """

    def __init__(self, urls_done, work_dir: str, config: MinHashConfig, keep: str, batch_size: int,
                 neighbours: int, node_key, parse_node, node_position):
        super().__init__()
        self.urls_done = urls_done
        self.layout = RunLayout(work_dir)
        self.config, self.keep, self.batch_size, self.neighbours = config, keep, batch_size, neighbours
        self.node_key, self.parse_node, self.node_position = node_key, parse_node, node_position

    @staticmethod
    def decision_folder(work_dir: str):
        """``file key -> folder`` of a file's decision runs (for ``shards.ApplyDecisionsFn``)."""
        return RunLayout(work_dir).decisions

    def expand(self, files):
        partitions = (files
                      | "CountFiles" >> beam.combiners.Count.Globally()
                      | "Partitions" >> beam.Map(partitions_for))
        side = beam.pvalue.AsSingleton(partitions)
        written = (
            files
            | "NoHeldDecisions" >> beam.Map(without_held_decisions)
            | "MinHashToRuns" >> beam.ParDo(
                MinHashToRunsFn(self.config, self.keep, self.node_key, self.batch_size, self.layout), side,
                beam.pvalue.AsSingleton(self.urls_done)
            ).with_outputs(MinHashFileFn.NO_SHINGLES, main="nodes")
        )

        def barrier(pcoll, label):
            return pcoll | f"{label}Done" >> beam.CombineGlobally(sum)

        def spread(done, label, units):
            return (
                done
                | f"{label}Units" >> beam.FlatMap(lambda _, p: units(p), side)
                | f"{label}Spread" >> beam.Reshuffle()
            )

        bands = self.config.bands
        nodes_done = barrier(written.nodes, "Signatures")
        raw = (spread(nodes_done, "Bands", lambda p: range(bands))
               | "BandCandidates" >> beam.ParDo(BandCandidatesFn(self.layout, self.neighbours), side))
        distinct = (spread(barrier(raw, "Buckets"), "Attach", range)
                    | "AttachSmaller" >> beam.ParDo(AttachSmallerFn(self.layout), side))
        verified = (spread(barrier(distinct, "Candidates"), "Verify", range)
                    | "VerifyEdges" >> beam.ParDo(VerifyRunsFn(self.layout, self.config.threshold,
                                                               self.config.fingerprint_hashes)))
        verified_done = barrier(verified, "Verified")
        children = verified_done | "Components" >> beam.ParDo(
            ComponentsFn(self.layout, self.parse_node, self.node_position))
        done = (children
                | "ComponentsWritten" >> beam.combiners.Count.Globally()
                | "DecisionsReady" >> beam.Map(lambda _: True))
        return {
            "children": children,
            "violations": nodes_done | "NoViolations" >> beam.Map(lambda _: 0),
            "no_shingles": written[MinHashFileFn.NO_SHINGLES],
            "candidates": distinct,
            "edges": verified,
            "done": done,
        }
