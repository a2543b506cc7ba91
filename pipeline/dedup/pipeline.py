"""The dedup stage: URL deduplication, then MinHash near-duplicate removal, as one Beam job.

``run(argv)`` reads ``DOCUMENT_SCHEMA`` Parquet (``--input`` folder or glob) and writes to
``--output``:

* ``data/part-SSSSS-of-NNNNN.parquet``: kept pages, ``DOCUMENT_SCHEMA`` + ``dup_count``;
* ``removed/``: one ``REMOVED_SCHEMA`` row per removed page (id, kept_id, reason, url), where
  ``kept_id`` is always a page of the kept output;
* ``rejects/``: rows that could not be used (no ``id``), with the reason;
* ``summary.json``: counts by reason, cluster-size histogram, LSH/component statistics and
  every parameter; ``cluster_sizes.png`` and ``s_curve.png``;
* ``_SUCCESS`` last, after everything else exists (a rerun on a complete folder returns its
  summary without work unless ``--overwrite``).

The paper (DeepSeekMath section 2.1) shrinks Common Crawl by "URL-based deduplication and
near-deduplication" without further detail; the choices here are documented in
``urls.py``, ``minhash.py``, ``components.py``, ``transforms.py`` and ``docs/dedup.md``.
When the connected components need more star rounds than ``--cc_rounds``, the job is run
again with twice as many (up to ``--cc_max_rounds``), so a finished output is always exact.
``--exchange``: the per-page records of the near-duplicate search cross between steps as Beam
shuffles, or as sorted run files under ``<output>/_exchange`` (``file_exchange``; deleted when
the stage completes), which keeps a local runner's memory flat; by default files on a local
runner and shuffles on Dataflow, Spark and Flink. Both give the same output.
"""
from __future__ import annotations

import argparse
import io
import logging
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.fileio import EmptyMatchTreatment

from pipeline.beam_utils import (
    WriteParquetShards,
    WriteRejects,
    clear_output,
    data_dir,
    is_complete,
    is_dry_run,
    join,
    mark_complete,
    runs_in_this_machine,
    parquet_glob,
    pipeline_options,
    read_json,
    run_pipeline,
    write_bytes,
    write_json,
)
from pipeline.dedup.file_exchange import NearDuplicatesOnFiles, UrlsOnFiles, without_held_decisions
from pipeline.dedup.minhash import MinHashConfig, s_curve_table
from pipeline.dedup.transforms import (
    KEEP_POLICIES,
    REASON_NEAR_DUP,
    REASON_URL,
    REMOVED_SCHEMA,
    DedupNearDuplicates,
    DedupUrls,
    ResolveKeptIds,
    cluster_size_bin,
    node_key,
    node_position,
    parse_node,
    removed_record,
    sort_bins,
    url_group_key,
)
from pipeline.dedup.shards import REJECTS, ApplyDecisionsFn, ReadMetadataFn, file_key
from pipeline.inputs import InputError, check_output_reachable, require_pages
from pipeline.schema import DOCUMENT_SCHEMA, DUP_COUNT, schema_with

LOG = logging.getLogger(__name__)
EXCHANGES = ("auto", "shuffle", "files")
EXCHANGE_DIR = "_exchange"
KEPT_SCHEMA = schema_with(DOCUMENT_SCHEMA, DUP_COUNT)
SUMMARY = "summary.json"


def build_parser() -> argparse.ArgumentParser:
    d = MinHashConfig()
    p = argparse.ArgumentParser(prog="python -m pipeline.dedup", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="folder of Parquet shards, or a glob / file")
    p.add_argument("--output", required=True, help="output folder (local, gs:// or s3://)")
    p.add_argument("--shingle_size", type=int, default=d.shingle_size, help="tokens per shingle")
    p.add_argument("--num_perm", type=int, default=d.num_perm, help="MinHash permutations")
    p.add_argument("--threshold", type=float, default=d.threshold,
                   help="exact shingle Jaccard from which two pages are near-duplicates")
    p.add_argument("--bands", type=int, default=None,
                   help="LSH bands (default: candidate_bands_rows(threshold, num_perm); 32 for 0.7 and 128)")
    p.add_argument("--rows", type=int, default=None, help="signature values per band (default: as --bands; 4)")
    p.add_argument("--neighbours", type=int, default=3,
                   help="each LSH bucket member is verified against this many of the bucket's smallest members")
    p.add_argument("--seed", type=int, default=d.seed, help="permutation seed (datasketch's default: 1)")
    p.add_argument("--fingerprint_hashes", type=int, default=d.fingerprint_hashes,
                   help="verification sketch: each page's smallest distinct shingle hashes (bottom-k); "
                        "exact Jaccard for pages with fewer shingles, 0: every shingle (exact, more memory)")
    p.add_argument("--keep", choices=KEEP_POLICIES, default="longest", help="representative of a component")
    p.add_argument("--exchange", choices=EXCHANGES, default="auto",
                   help="how per-page records move between steps: Beam shuffles, or sorted run files under "
                        "<output>/_exchange (flat memory on local runners, which hold shuffles in memory); "
                        "auto: files on a local runner, shuffles on Dataflow, Spark and Flink")
    p.add_argument("--cc_rounds", type=int, default=12, help="large/small-star rounds unrolled in the job")
    p.add_argument("--cc_max_rounds", type=int, default=48, help="rerun with doubled rounds up to this")
    p.add_argument("--num_shards", type=int, default=0, help="kept Parquet shards (0: the runner decides)")
    p.add_argument("--batch_size", type=int, default=256, help="pages per MinHash batch")
    p.add_argument("--overwrite", action="store_true", help="recompute even if the output is complete")
    return p


def _stat(name: str):
    return beam.Map(lambda n, name=name: (name, int(n)))


class _WriteSummary(beam.DoFn):
    def __init__(self, path: str, parameters: dict):
        self.path = path
        self.parameters = parameters

    def process(self, stats: dict):
        write_json(self.path, make_summary(stats, self.parameters))


def make_summary(stats: dict, parameters: dict) -> dict:
    """The ``summary.json`` object from the pipeline's summed statistics and the parameters."""
    def get(k: str) -> int:
        return int(stats.get(k, 0))

    removed = {REASON_URL: get("removed:url"), REASON_NEAR_DUP: get("removed:near_dup")}
    rejected = {k.split(":", 1)[1]: int(v) for k, v in stats.items() if k.startswith("rejected:")}
    hist = {k.split(":", 1)[1]: int(v) for k, v in stats.items() if k.startswith("cluster_size:")}
    counts = {
        "input_rows": get("input_rows") + sum(rejected.values()),
        "valid_rows": get("input_rows"),
        "rejected": rejected,
        "kept": get("kept"),
        "removed": removed,
        "removed_total": sum(removed.values()),
        "pages_without_shingles": get("no_shingles"),
        "pages_represented": get("represented"),
    }
    consistent = (counts["kept"] + counts["removed_total"] == counts["valid_rows"]
                  and counts["pages_represented"] >= counts["valid_rows"])
    return {
        "stage": "dedup",
        "counts": counts,
        "consistent": consistent,
        "cluster_size_histogram": {b: hist[b] for b in sort_bins(hist)},
        "lsh": {"candidate_edges": get("candidates"), "verified_edges": get("edges")},
        "components": {
            "rounds": parameters["cc_rounds"],
            "fixpoint_violations": get("violations"),
            "converged": get("violations") == 0,
        },
        "parameters": parameters,
    }


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace, config: MinHashConfig, cc_rounds: int,
                   dry_run: bool = False, exchange: str = "shuffle") -> None:
    """Adds the whole stage to ``pipeline`` (reading, both dedup steps, all outputs); ``exchange``
    is ``shuffle`` or ``files`` (see ``file_exchange``)."""
    parameters = {
        "input": args.input,
        "output": args.output,
        "minhash": config.to_dict(),
        "s_curve": s_curve_table(config.bands, config.rows),
        "keep": args.keep,
        "neighbours": args.neighbours,
        "verification": ("Jaccard of shingle-hash sets >= threshold for every candidate edge: exact for pages of "
                         f"fewer than {config.fingerprint_hashes} distinct shingles, beyond them the bottom-"
                         f"{config.fingerprint_hashes} estimate" if config.fingerprint_hashes else
                         "exact Jaccard of shingle-hash sets >= threshold for every candidate edge"),
        "exchange": exchange,
        "cc_rounds": cc_rounds if exchange == "shuffle" else None,
        "components": ("large/small-star rounds in Beam" if exchange == "shuffle" else
                       "union-find over the verified edges in one worker"),
        "url_dedup": "newest fetch_time per normalised URL; ties: smallest id, warc_path, warc_offset",
    }
    files = (
        pipeline
        | "InputGlob" >> beam.Create([parquet_glob(args.input)])
        | "MatchFiles" >> fileio.MatchAll(EmptyMatchTreatment.ALLOW)
        | "FileKeys" >> beam.Map(lambda meta: (file_key(meta.path), meta.path))
        | "SpreadFiles" >> beam.Reshuffle()
    )
    if exchange == "files":
        work = join(args.output, EXCHANGE_DIR)
        urls = files | "UrlsOnFiles" >> UrlsOnFiles(work, url_group_key, removed_record, REASON_URL)
        near = files | "NearDuplicatesOnFiles" >> NearDuplicatesOnFiles(
            urls["done"], work, config, args.keep, args.batch_size, args.neighbours, node_key, parse_node,
            node_position)
        applied = (
            files
            | "NoHeldDecisions" >> beam.Map(without_held_decisions)
            | "ApplyDecisions" >> beam.ParDo(ApplyDecisionsFn(removed_record, NearDuplicatesOnFiles.decision_folder(work)),
                                             beam.pvalue.AsSingleton(near["done"])).with_outputs(
                ApplyDecisionsFn.REMOVED, main="kept")
        )
        rejects, input_rows = urls["rejects"], urls["input_rows"]
    else:
        meta = files | "ReadMetadata" >> beam.ParDo(ReadMetadataFn(url_group_key)).with_outputs(REJECTS, main="members")
        urls = meta.members | "DedupUrls" >> DedupUrls()
        near = files | "DedupNearDuplicates" >> DedupNearDuplicates(urls["decisions"], config, args.keep, cc_rounds,
                                                                   args.batch_size, args.neighbours)
        decisions = (urls["decisions"], near["decisions"]) | "AllDecisions" >> beam.Flatten()
        applied = (
            {"path": files, "decision": decisions}
            | "DecisionsPerFile" >> beam.CoGroupByKey()
            | "ApplyDecisions" >> beam.ParDo(ApplyDecisionsFn(removed_record)).with_outputs(
                ApplyDecisionsFn.REMOVED, main="kept")
        )
        rejects, input_rows = meta[REJECTS], meta.members | "CountRows" >> beam.combiners.Count.Globally()
    kept = applied.kept
    url_removed = urls["removed"] | "ResolveKeptIds" >> ResolveKeptIds(near["children"])
    near_removed = applied[ApplyDecisionsFn.REMOVED]
    removed = (url_removed, near_removed) | "AllRemoved" >> beam.Flatten()

    kept | "WriteKept" >> WriteParquetShards(data_dir(args.output), KEPT_SCHEMA, args.num_shards)
    removed | "WriteRemoved" >> WriteParquetShards(join(args.output, "removed"), REMOVED_SCHEMA, 0)  # no shuffle
    rejects | "WriteRejects" >> WriteRejects(args.output)

    def tally(pcoll, name: str, label: str):
        """One ``(name, 1)`` per element: all statistics are summed by one ``CombinePerKey``."""
        return pcoll | label >> beam.Map(lambda _, name=name: (name, 1))

    stats = [
        input_rows | "StatValid" >> _stat("input_rows"),
        rejects | "RejectReasons" >> beam.Map(lambda r: ("rejected:" + r["reason"], 1)),
        tally(url_removed, "removed:url", "StatUrl"),
        tally(near_removed, "removed:near_dup", "StatNear"),
        tally(kept, "kept", "StatKept"),
        kept | "Represented" >> beam.Map(lambda r: ("represented", r["dup_count"])),
        kept | "ClusterBins" >> beam.Map(lambda r: ("cluster_size:" + cluster_size_bin(r["dup_count"]), 1)),
        tally(near["no_shingles"], "no_shingles", "StatNoShingles"),
        near["candidates"] | "StatCandidates" >> _stat("candidates"),
        near["edges"] | "StatEdges" >> _stat("edges"),
        near["violations"] | "StatViolations" >> _stat("violations"),
    ]
    (
        stats
        | "AllStats" >> beam.Flatten()
        | "SumStats" >> beam.CombinePerKey(sum)
        | "StatsDict" >> beam.combiners.ToDict()
        | "WriteSummary" >> beam.ParDo(_WriteSummary(join(args.output, SUMMARY), parameters))
    )


def _plot(summary: dict, output: str) -> None:
    """``cluster_sizes.png`` and ``s_curve.png`` beside the summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from pipeline.dedup.minhash import candidate_probability

    hist = summary["cluster_size_histogram"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(hist), list(hist.values()), color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("pages a kept page stands for (dup_count)")
    ax.set_ylabel("kept pages")
    ax.set_title("Duplicate cluster sizes")
    _save(fig, join(output, "cluster_sizes.png"))
    plt.close(fig)

    mh = summary["parameters"]["minhash"]
    s = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(s, candidate_probability(s, mh["bands"], mh["rows"]))
    ax.axvline(mh["threshold"], color="gray", ls="--", label=f"verification threshold {mh['threshold']:.2f}")
    ax.set_xlabel("Jaccard similarity of two pages")
    ax.set_ylabel("P(candidate pair)")
    ax.set_title(f"LSH S-curve (candidates, then exact verification): {mh['bands']} bands x {mh['rows']} rows")
    ax.legend()
    _save(fig, join(output, "s_curve.png"))
    plt.close(fig)


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    write_bytes(path, buf.getvalue())


def run(argv: list[str] | None = None) -> dict:
    """Runs the dedup stage; returns the summary (for a dry run: the parameters only)."""
    args, beam_args = build_parser().parse_known_args(argv)
    config = MinHashConfig.for_threshold(args.threshold, args.num_perm, args.bands, args.rows,
                                         shingle_size=args.shingle_size, seed=args.seed,
                                         fingerprint_hashes=args.fingerprint_hashes)
    if args.neighbours < 1:
        raise InputError("--neighbours must be >= 1")
    if args.cc_rounds < 1 or args.cc_max_rounds < args.cc_rounds:
        raise InputError("need 1 <= --cc_rounds <= --cc_max_rounds")
    options = pipeline_options(beam_args)
    dry_run = is_dry_run(options)
    check_output_reachable(args.output, options)
    if not dry_run and not args.overwrite and is_complete(args.output):
        LOG.info("dedup output %s is complete; returning its summary (use --overwrite to recompute)", args.output)
        return read_json(join(args.output, SUMMARY))
    if not dry_run:
        require_pages(args.input)

    exchange = args.exchange if args.exchange != "auto" else ("files" if runs_in_this_machine(options) else "shuffle")
    rounds = args.cc_rounds
    while True:
        started = time.time()
        if not dry_run:
            clear_output(args.output)
        with_options = beam.Pipeline(options=options)
        build_pipeline(with_options, args, config, rounds, dry_run, exchange)
        run_pipeline(with_options)
        if dry_run:
            return {"stage": "dedup", "dry_run": True, "parameters": {"minhash": config.to_dict(), "keep": args.keep,
                                                                      "neighbours": args.neighbours,
                                                                      "cc_rounds": rounds, "exchange": exchange}}
        summary = read_json(join(args.output, SUMMARY))
        if summary["components"]["converged"]:
            break
        if rounds >= args.cc_max_rounds:
            raise RuntimeError(f"connected components did not converge in {rounds} star rounds "
                               f"({summary['components']['fixpoint_violations']} nodes off the fixpoint); "
                               "raise --cc_max_rounds")
        LOG.warning("components not converged after %d rounds; rerunning with %d", rounds, 2 * rounds)
        rounds = min(2 * rounds, args.cc_max_rounds)
    if exchange == "files":
        clear_output(join(args.output, EXCHANGE_DIR))
    summary["wall_seconds"] = round(time.time() - started, 3)
    summary["pages_per_second"] = round(summary["counts"]["input_rows"] / max(summary["wall_seconds"], 1e-9), 1)
    write_json(join(args.output, SUMMARY), summary)
    _plot(summary, args.output)
    mark_complete(args.output, {"kept": summary["counts"]["kept"]})
    return summary
