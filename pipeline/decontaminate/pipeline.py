"""The decontamination stage as a job: Parquet pages in, clean Parquet + audit + summary out.

``run(argv)`` (also ``python -m pipeline.decontaminate``):

1. builds the benchmark index on the driver from ``--benchmarks`` (or loads ``--index``) and
   writes it to ``<output>/index.npz`` (a dry run writes it to a local temporary folder);
2. reads the input's pages (``parquet_glob``: ``<input>/data/*.parquet`` or ``<input>/*.parquet``) (the schema of the first file is the output schema, so columns
   added by earlier stages such as ``dup_count``/``math_score``/``recall_round`` are kept);
3. runs ``Decontaminate`` and writes ``<output>/data/part-*.parquet`` (clean pages),
   ``<output>/contaminated/`` (audit rows), ``<output>/rejects/``, ``<output>/summary.json``,
   and last ``<output>/_SUCCESS``;
4. returns the summary dict.

A finished output (``_SUCCESS`` present) is not recomputed unless ``--force`` is given; its
summary is returned. With ``--runner=DataflowRunner --dry_run=True`` the job is only built: no
page is read, nothing is written under ``--output``, and the returned dict says ``dry_run``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import asdict

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.beam_utils import (
    WriteParquetShards,
    WriteRejects,
    clear_output,
    counters,
    data_dir,
    is_complete,
    is_dry_run,
    join,
    mark_complete,
    parquet_glob,
    pipeline_options,
    read_json,
    run_pipeline,
    write_bytes,
    write_json,
)
from pipeline.inputs import InputError, check_output_reachable, require_file, require_pages
from pipeline.decontaminate.benchmarks_spec import parse_specs
from pipeline.decontaminate.index import BenchmarkIndex, IndexConfig, build_index
from pipeline.decontaminate.transforms import CONTAMINATION_SCHEMA, NAMESPACE, Decontaminate
from pipeline.schema import DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND, schema_with

log = logging.getLogger(__name__)

INDEX_FILE = "index.npz"
SUMMARY_FILE = "summary.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.decontaminate",
        description="Remove pages that contain benchmark text (DeepSeekMath's 10-gram rule). "
        "Unknown arguments are passed to Beam (e.g. --runner, --direct_num_workers).",
    )
    p.add_argument("--input", required=True, help="folder (or glob) of input Parquet pages")
    p.add_argument("--output", required=True, help="output folder (local, gs://, s3://)")
    p.add_argument(
        "--benchmarks",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="'default' (all bundled), a bundled name (gsm8k, math, cmath, gaokao_mathqa, "
        "gaokao_mathcloze) or name=path.{jsonl,jsonl.gz,parquet}:field1,field2+field3[:id_field]",
    )
    defaults = IndexConfig()
    p.add_argument("--ngram", type=int, default=defaults.n, help="n-gram length (paper: 10)")
    p.add_argument(
        "--min_short_tokens",
        type=int,
        default=defaults.min_short_tokens,
        help="benchmark texts of this many to ngram-1 tokens are matched whole (paper: 3)",
    )
    p.add_argument(
        "--min_wordlike_tokens",
        type=int,
        default=defaults.min_wordlike_tokens,
        help="index only n-gram windows with at least this many word-like tokens (words of 2+ letters, "
        "CJK characters); 0: all, as the paper",
    )
    p.add_argument(
        "--min_wordlike_whole",
        type=int,
        default=defaults.min_wordlike_whole,
        help="match a short text, or a long text none of whose windows is indexed, as a whole only if it "
        "has at least this many word-like tokens (0: all, as the paper)",
    )
    p.add_argument(
        "--plain_rule",
        action="store_true",
        help="the paper's plain rule: sets --min_wordlike_tokens 0 --min_wordlike_whole 0 --max_items_per_ngram 0",
    )
    p.add_argument(
        "--max_items_per_ngram",
        type=int,
        default=defaults.max_items_per_ngram,
        help="drop n-grams shared by this many benchmark items as templates (0: off, as the paper)",
    )
    p.add_argument(
        "--index", default=None, help="use this prebuilt index file (written by a previous run) instead of building one"
    )
    p.add_argument("--audit_texts_per_page", type=int, default=20, help="at most this many audit rows per removed page")
    p.add_argument("--num_shards", type=int, default=1, help="clean output shards (0: let the runner decide)")
    p.add_argument("--force", action="store_true", help="recompute even if the output is already complete")
    return p


def _input_schema(input_path: str, dry_run: bool) -> pa.Schema:
    """The schema of the first input file (metadata dropped). A dry run reads no input (it may
    not exist yet) and uses the document schema with every column earlier stages may add."""
    if dry_run:
        return schema_with(DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND)
    pattern = require_pages(input_path)
    files = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    with FileSystems.open(files[0], compression_type="uncompressed") as fh:
        schema = pq.read_schema(fh).remove_metadata()
    for name in ("id", "text"):
        if name not in schema.names:
            raise InputError(f"--input {input_path}: {files[0]} has no {name!r} column (columns: {schema.names}); "
                             "give pages written by an earlier stage")
    return schema


def _items_matched(output: str) -> dict[str, int]:
    """Distinct benchmark items named in the audit output, per benchmark."""
    files = [m.path for m in FileSystems.match([join(output, "contaminated", "*.parquet")])[0].metadata_list]
    seen: dict[str, set[str]] = {}
    for path in files:
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            table = pq.read_table(fh, columns=["benchmark", "item_id"])
        for benchmark, item in zip(table.column("benchmark").to_pylist(), table.column("item_id").to_pylist()):
            seen.setdefault(benchmark, set()).add(item)
    return {k: len(v) for k, v in sorted(seen.items())}


def run(argv: list[str] | None = None) -> dict:
    """Run the stage; returns its summary (see the module docstring)."""
    args, beam_args = build_parser().parse_known_args(argv)
    options = pipeline_options(beam_args)
    dry_run = is_dry_run(options)
    output = args.output.rstrip("/")
    check_output_reachable(output, options)
    if not dry_run and not args.force and is_complete(output):
        log.info("decontaminate: %s is complete, skipping (use --force to recompute)", output)
        return {**read_json(join(output, SUMMARY_FILE)), "skipped": True}

    t0 = time.time()
    schema = _input_schema(args.input, dry_run)  # before the index is built: a wrong input fails at once
    try:
        specs = parse_specs(args.benchmarks)
    except ValueError as exc:
        raise InputError(f"--benchmarks: {exc}") from None
    if args.index:
        index = BenchmarkIndex.load(require_file(args.index, "--index", "give an index.npz written by a previous run, "
                                                 "or leave --index out to build one"))
    else:
        if args.plain_rule:
            args.min_wordlike_tokens = args.min_wordlike_whole = args.max_items_per_ngram = 0
        config = IndexConfig(
            n=args.ngram,
            min_short_tokens=args.min_short_tokens,
            max_items_per_ngram=args.max_items_per_ngram,
            min_wordlike_tokens=args.min_wordlike_tokens,
            min_wordlike_whole=args.min_wordlike_whole,
        )
        try:
            index = build_index(specs, config)
        except FileNotFoundError as exc:
            raise InputError(f"--benchmarks: {exc}; give benchmark files that exist (see docs/decontamination.md)") from None
    data = index.to_bytes()

    if dry_run:
        index_path = os.path.join(tempfile.mkdtemp(prefix="decontaminate-index-"), INDEX_FILE)
    else:
        clear_output(output)
        index_path = join(output, INDEX_FILE)
    write_bytes(index_path, data)
    index_tag = f"{index_path}#{hashlib.sha1(data).hexdigest()}"

    pipeline = beam.Pipeline(options=options)
    # a dry run must not touch the input (it may not exist yet): no file-pattern validation
    rows = pipeline | "ReadPages" >> beam.io.ReadFromParquet(parquet_glob(args.input), validate=not dry_run)
    out = rows | "Decontaminate" >> Decontaminate(index_path, index_tag, args.audit_texts_per_page, args.input)
    _ = out.clean | "WriteClean" >> WriteParquetShards(data_dir(output), schema, args.num_shards)
    _ = out.contaminated | "WriteAudit" >> WriteParquetShards(join(output, "contaminated"), CONTAMINATION_SCHEMA, 1)
    _ = out.rejects | "WriteRejects" >> WriteRejects(output)
    result = run_pipeline(pipeline)

    parameters = {
        "input": args.input,
        "output": output,
        "benchmarks": [asdict(s) for s in specs] if not args.index else f"prebuilt index {args.index}",
        "index_config": asdict(index.config),
        "audit_texts_per_page": args.audit_texts_per_page,
        "num_shards": args.num_shards,
    }
    if dry_run:
        return {"stage": "decontaminate", "dry_run": True, "parameters": parameters, "index": index.summary()}

    counts = counters(result, NAMESPACE)

    def c(name: str) -> int:
        return counts.get(f"{NAMESPACE}:{name}", 0)

    items_matched = _items_matched(output)
    seconds = round(time.time() - t0, 2)
    summary = {
        "stage": "decontaminate",
        "parameters": parameters,
        "index": {**index.summary(), "path": index_path},
        "pages": {
            "in": c("pages_in"),
            "kept": c("pages_kept"),
            "contaminated": c("pages_contaminated"),
            "rejected": sum(v for k, v in counts.items() if k.startswith(f"{NAMESPACE}:rejected_")),
            "empty_text": c("pages_empty_text"),
        },
        "per_benchmark": {
            name: {
                "pages": c(f"contaminated_{name}"),
                "items_matched": items_matched.get(name, 0),
                "items": stats["items"],
            }
            for name, stats in index.stats.benchmarks.items()
        },
        "rejects": {
            k.split(":", 1)[1][len("rejected_") :]: v
            for k, v in counts.items()
            if k.startswith(f"{NAMESPACE}:rejected_")
        },
        "hash_collisions": c("hash_collisions"),
        "counters": counts,
        "seconds": seconds,
    }
    write_json(join(output, SUMMARY_FILE), summary)
    mark_complete(output, {"pages_in": summary["pages"]["in"], "pages_kept": summary["pages"]["kept"]})
    log.info("decontaminate: %s", summary["pages"])
    return summary
