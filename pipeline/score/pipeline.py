"""The score stage: ``python -m pipeline.score --model model.bin --input DIR --output DIR``.

Reads Parquet rows (any schema with ``id`` and ``text``: the extract or dedup output), adds
``math_score`` (the fastText math classifier's probability of math, see ``classifiers``) and
writes ``schema_with(<input schema>, MATH_SCORE)`` Parquet shards to ``<output>/data/``, with
``rejects/`` (rows without a text), ``summary.json`` (counts, rejects by reason, a 20-bin
score histogram, parameters) and ``_SUCCESS`` last. A rerun on a complete output returns its summary unless ``--overwrite``.

The input schema is read from the first input file's Parquet footer. With
``--runner=DataflowRunner --dry_run=True`` nothing is read on the driver: the job is built for
the dedup output's schema (``DOCUMENT_SCHEMA`` + ``dup_count``) and returned unsubmitted.
"""
from __future__ import annotations

import argparse
import logging
import time

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from classifiers.normalize import DEFAULT_MAX_TOKENS
from pipeline.beam_utils import (
    WriteParquetShards,
    WriteRejects,
    clear_output,
    data_dir,
    is_complete,
    is_dry_run,
    join,
    mark_complete,
    parquet_glob,
    pipeline_options,
    read_json,
    run_pipeline,
    write_json,
)
from pipeline.inputs import InputError, check_output_reachable, require_file, require_pages
from pipeline.schema import DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, schema_with
from pipeline.score.transforms import ScoreWithClassifier

LOG = logging.getLogger(__name__)
SUMMARY = "summary.json"
STATS = "stats.json"
HISTOGRAM_BINS = 20
DRY_RUN_INPUT_SCHEMA = schema_with(DOCUMENT_SCHEMA, DUP_COUNT)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.score", description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--model", required=True, help="model written by classifiers.train (local, gs://, s3://)")
    p.add_argument("--input", required=True, help="folder of Parquet shards, or a glob / file")
    p.add_argument("--output", required=True, help="output folder (local, gs:// or s3://)")
    p.add_argument("--num_shards", "--num-shards", type=int, default=0, help="output shards; 0: the runner decides")
    p.add_argument("--batch_size", "--batch-size", type=int, default=256, help="texts per fastText predict call")
    p.add_argument("--max_tokens", "--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                   help="classifier tokens read per page (must match training)")
    p.add_argument("--overwrite", action="store_true", help="recompute even when the output is complete")
    return p


def input_schema(pattern: str) -> pa.Schema:
    """The Arrow schema of the first Parquet file matching ``pattern`` (read from its footer only)."""
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches:
        raise InputError(f"{pattern}: no Parquet file matches; give the folder of a finished stage "
                         "(e.g. out/dedup), a folder of .parquet shards or a glob")
    first = min(m.path for m in matches)
    with FileSystems.open(first, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return pq.read_schema(fh)


def histogram_bin(score: float, bins: int = HISTOGRAM_BINS) -> int:
    """The histogram bin of a score in [0, 1]: ``floor(score * bins)``, with 1.0 in the last bin."""
    return min(bins - 1, max(0, int(score * bins)))


class _WriteStats(beam.DoFn):
    """Writes the stage's in-pipeline statistics (a dict) as JSON: counts that hold on every
    runner, unlike metrics, which not every runner reports back."""

    def __init__(self, path: str):
        self.path = path

    def process(self, stats: dict):
        write_json(self.path, stats)


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace, schema: pa.Schema, dry_run: bool = False) -> None:
    """Adds the stage (read, score, write scored rows, rejects and statistics) to ``pipeline``."""
    rows = pipeline | "ReadParquet" >> beam.io.ReadFromParquet(parquet_glob(args.input), validate=not dry_run)
    out = rows | "ScoreWithClassifier" >> ScoreWithClassifier(args.model, args.batch_size, args.max_tokens)
    out["scored"] | "WriteScored" >> WriteParquetShards(data_dir(args.output), schema_with(schema, MATH_SCORE), args.num_shards)
    out["rejects"] | "WriteRejects" >> WriteRejects(args.output)
    (
        (
            out["scored"] | "ScoreBin" >> beam.Map(lambda r: (f"bin:{histogram_bin(r['math_score'])}", 1)),
            out["rejects"] | "RejectReason" >> beam.Map(lambda r: ("rejected:" + r["reason"], 1)),
        )
        | "AllStats" >> beam.Flatten()
        | "SumStats" >> beam.CombinePerKey(sum)
        | "StatsDict" >> beam.combiners.ToDict()
        | "WriteStats" >> beam.ParDo(_WriteStats(join(args.output, STATS)))
    )


def run(argv: list[str] | None = None) -> dict:
    """Runs the score stage; returns the summary (for a dry run: the parameters only)."""
    args, beam_args = build_parser().parse_known_args(argv)
    options = pipeline_options(beam_args)
    dry_run = is_dry_run(options)
    check_output_reachable(args.output, options)
    if not dry_run and not args.overwrite and is_complete(args.output):
        LOG.info("score output %s is complete; returning its summary (use --overwrite to recompute)", args.output)
        return read_json(join(args.output, SUMMARY))
    if not dry_run:
        require_file(args.model, "--model", "train one first: python -m classifiers.train --positives ... "
                     "--negatives ... --output out/model.bin")
        require_pages(args.input)
    schema = DRY_RUN_INPUT_SCHEMA if dry_run else input_schema(parquet_glob(args.input))
    if not dry_run:
        clear_output(args.output)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, args, schema, dry_run)
    run_pipeline(pipeline)
    if dry_run:
        return {"stage": "score", "dry_run": True, "parameters": vars(args), "output_schema": schema_with(schema, MATH_SCORE).names}
    stats = read_json(join(args.output, STATS))
    rejected = {k.split(":", 1)[1]: v for k, v in sorted(stats.items()) if k.startswith("rejected:")}
    histogram = {str(b): stats.get(f"bin:{b}", 0) for b in range(HISTOGRAM_BINS)}
    scored = sum(histogram.values())
    summary = {
        "stage": "score",
        "rows_in": scored + sum(rejected.values()),
        "rows_out": scored,
        "rejected_by_reason": rejected,
        "score_histogram": histogram,
        "histogram_bins": HISTOGRAM_BINS,
        "parameters": vars(args),
        "wall_seconds": round(time.time() - started, 3),
    }
    write_json(join(args.output, SUMMARY), summary)
    mark_complete(args.output, {"rows_out": scored})
    return summary
