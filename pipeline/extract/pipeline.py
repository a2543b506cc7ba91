"""Build and run the extract stage: WARC/ARC/WET files -> Parquet page rows, rejects, summary.

    python -m pipeline.extract --input GLOB [--input GLOB ...] --output DIR [--num_shards N]
        [--config extract.yaml] [stage flags] [any Beam pipeline option]

Outputs in ``--output`` (local, ``gs://`` or ``s3://``):
- ``data/part-SSSSS-of-NNNNN.parquet``: one row per page, ``pipeline.schema.DOCUMENT_SCHEMA``, zstd;
- ``rejects/part-SSSSS-of-NNNNN.parquet``: ``REJECT_SCHEMA`` rows (file, offset, url, reason, detail);
- ``summary.json``: files, bytes, records, pages read / kept / rejected by reason, records skipped
  by reason, wall time, throughput, the configuration and every counter;
- ``outcomes.png``: the same outcomes as a bar chart;
- ``_SUCCESS``: written last; a complete output is not recomputed unless ``--overwrite``.

``run(argv)`` parses its own flags with ``parse_known_args`` and hands the rest to Beam. With
``--runner=DataflowRunner --dry_run=True`` it only builds the job: no input listing, no output
clearing, no summary; it returns the parameters and the built job is in
``pipeline.beam_utils.last_result().job``.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import time
from collections.abc import Sequence

import apache_beam as beam
import yaml
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

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
    pipeline_options,
    read_json,
    run_pipeline,
    write_bytes,
    write_json,
)
from pipeline.inputs import InputError, check_output_reachable
from pipeline.extract.transforms import NAMESPACE, TIERS, ExtractConfig, ExtractText
from pipeline.schema import DOCUMENT_SCHEMA

LOG = logging.getLogger(__name__)
SUMMARY = "summary.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", action="extend", nargs="+", required=True,
                   help="WARC/ARC/WET file, glob or folder (repeatable); local, gs:// or s3://")
    p.add_argument("--output", required=True, help="output folder (local, gs:// or s3://)")
    p.add_argument("--num_shards", type=int, default=0,
                   help="document Parquet shards; 0 (default): one file per bundle, the rows streamed to it (no "
                        "shuffle, memory flat in the input size); N: exactly N files, the rows shuffled to them")
    p.add_argument("--rejects_shards", type=int, default=1, help="reject Parquet shards")
    p.add_argument("--config", help="YAML file with any of the stage flags below as keys")
    p.add_argument("--overwrite", action="store_true", help="recompute even if the output is complete")
    add_stage_settings(p)
    return p


def add_stage_settings(p: argparse.ArgumentParser) -> None:
    """The ``ExtractConfig`` flags (shared with ``pipeline.extract.refine``)."""
    d = ExtractConfig()
    g = p.add_argument_group("stage settings")
    g.add_argument("--max_payload_bytes", type=int, default=d.max_payload_bytes,
                   help="decoded payload bytes read per record; larger records (and gzip bombs) are rejected")
    g.add_argument("--extract_timeout_s", type=float, default=d.extract_timeout_s,
                   help="time limit for extracting one page")
    g.add_argument("--extract_memory_mb", type=int, default=d.extract_memory_mb,
                   help="address-space cap of the extractor process (0: none)")
    g.add_argument("--extract_isolation", choices=("process", "thread", "inline"), default=d.extract_isolation,
                   help="how the time limit is enforced (see pipeline/extract/sandbox.py)")
    g.add_argument("--extract_processes", type=int, default=d.extract_processes,
                   help="extractor processes per worker process, shared by its threads")
    g.add_argument("--max_resyncs_per_file", type=int, default=d.max_resyncs_per_file,
                   help="corrupt regions skipped per archive before giving up on it")
    g.add_argument("--max_replacement_share", type=float, default=d.max_replacement_share,
                   help="share of U+FFFD a charset may leave and still count as decoding the page")
    g.add_argument("--langid_max_chars", type=int, default=d.langid_max_chars,
                   help="characters of the page scored by the language identifier")
    g.add_argument("--exact_dedup", action=argparse.BooleanOptionalAction, default=d.exact_dedup,
                   help="drop pages whose payload is identical to an earlier record's before extraction")
    g.add_argument("--tier", choices=TIERS, default=d.tier,
                   help="fast: score resiliparse text and extract only the recalled pages precisely "
                        "(pipeline.extract.refine); precise: the math-preserving extractor on every page")
    g.add_argument("--reshuffle_pages", action=argparse.BooleanOptionalAction, default=d.reshuffle_pages,
                   help="also spread pages (not only files) over workers")


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str], ExtractConfig]:
    """Stage args, the remaining (Beam) args, and the validated ``ExtractConfig``.

    Precedence: command line > ``--config`` YAML > defaults. Unknown YAML keys are errors."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.config:
        if not FileSystems.exists(args.config):
            raise InputError(f"--config {args.config}: no such file; give a YAML file of stage flags")
        with FileSystems.open(args.config) as fh:
            data = yaml.safe_load(fh.read().decode("utf-8")) or {}
        known = {f.name for f in dataclasses.fields(ExtractConfig)} | {"num_shards",
                                                                       "rejects_shards"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"--config {args.config}: unknown keys {unknown}; known: {sorted(known)}")
        parser.set_defaults(**data)
        args, beam_args = parser.parse_known_args(argv)
    config = ExtractConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ExtractConfig)})
    if args.num_shards < 0 or args.rejects_shards < 1:
        raise InputError("need --num_shards >= 0 and --rejects_shards >= 1")
    return args, beam_args, config


def input_patterns(inputs: Sequence[str]) -> list[str]:
    """Patterns to match: a folder stands for the files in it."""
    patterns = []
    for item in inputs:
        is_glob = any(ch in item for ch in "*?[")
        if not is_glob and (item.endswith("/") or _is_local_dir(item)):
            patterns.append(join(item.rstrip("/"), "*"))
        else:
            patterns.append(item)
    return patterns


def _is_local_dir(path: str) -> bool:
    import os

    return "://" not in path and os.path.isdir(path)


def list_inputs(patterns: Sequence[str]) -> tuple[int, int]:
    """(number of files, total bytes) matched on the driver; raises ``InputError`` naming the
    patterns that match nothing (a typo should fail before a cluster starts)."""
    results = FileSystems.match(list(patterns))
    empty = [p for p, r in zip(patterns, results) if not r.metadata_list]
    if empty:
        raise InputError(f"--input {' '.join(empty)}: no file matches; give WARC/ARC/WET files, folders or globs "
                         "(e.g. 'data/sample/warc/*')")
    files = {m.path: m.size_in_bytes for r in results for m in r.metadata_list}
    return len(files), sum(int(s or 0) for s in files.values())


def build_pipeline(pipeline: beam.Pipeline, patterns: list[str], output: str, config: ExtractConfig,
                   num_shards: int, rejects_shards: int) -> None:
    """Attach the extract stage and its writers to ``pipeline``."""
    out = pipeline | "ExtractText" >> ExtractText(patterns, config)
    out["documents"] | "WriteDocuments" >> WriteParquetShards(data_dir(output), DOCUMENT_SCHEMA, num_shards)
    out["rejects"] | "WriteRejects" >> WriteRejects(output, rejects_shards)


def _distributions(result) -> dict[str, dict]:
    out = {}
    try:
        query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    except Exception:  # noqa: BLE001 - some runners do not report distributions
        return out
    for dist in query.get("distributions", []):
        value = dist.committed or dist.attempted
        if value is None or not value.count:
            continue
        out[dist.key.metric.name] = {"count": value.count, "sum": value.sum, "min": value.min, "max": value.max,
                                     "mean": round(value.sum / value.count, 3)}
    return out


def make_summary(counts: dict[str, int], *, inputs: Sequence[str], output: str, config: ExtractConfig,
                 wall_time_s: float, runner: str, distributions: dict | None = None) -> dict:
    """``summary.json`` from the job's counters (``{"extract:name": value}``)."""
    c = {k.split(":", 1)[1]: int(v) for k, v in counts.items() if k.startswith(f"{NAMESPACE}:")}
    by_prefix = lambda prefix: dict(sorted((k[len(prefix):], v) for k, v in c.items() if k.startswith(prefix)))
    rejected = by_prefix("rejected:")
    from pipeline.extract.transforms import FILE_LEVEL_REASONS

    page_rejects = {k: v for k, v in rejected.items() if k not in FILE_LEVEL_REASONS}
    file_rejects = {k: v for k, v in rejected.items() if k in FILE_LEVEL_REASONS}
    kept = c.get("pages_kept", 0)
    read = c.get("pages_read", 0)
    wall = max(wall_time_s, 1e-9)
    return {
        "stage": "extract",
        "inputs": list(inputs),
        "output": output,
        "runner": runner,
        "files": c.get("files", 0),
        "bytes_read": c.get("file_bytes", 0),
        "payload_bytes": c.get("payload_bytes", 0),
        "records_read": c.get("records", 0),
        "pages_read": read,
        "pages_kept": kept,
        "pages_rejected": sum(page_rejects.values()),
        "rejected": page_rejects,
        "file_errors": file_rejects,
        "skipped": by_prefix("skipped:"),
        "accounted": kept + sum(page_rejects.values()) == read,
        "pages_truncated": c.get("pages_truncated", 0),
        "pages_with_formulas": c.get("pages_with_formulas", 0),
        "pages_with_math_renderer": c.get("pages_with_math_renderer", 0),
        "formulas": c.get("formulas", 0),
        "formula_sources": by_prefix("formula_source:"),
        "text_chars": c.get("text_chars", 0),
        "charset_from": by_prefix("charset_from:"),
        "wall_time_s": round(wall_time_s, 3),
        "pages_per_s": round(read / wall, 2),
        "mb_per_s": round(c.get("file_bytes", 0) / 1e6 / wall, 3),
        "distributions": distributions or {},
        "config": config.to_dict(),
        "counters": dict(sorted(counts.items())),
    }


def plot_outcomes(summary: dict, path: str) -> None:
    """Bar chart of kept pages, rejects by reason and skips by reason (PNG at ``path``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [("kept", summary["pages_kept"], "tab:green")]
    bars += [(f"rejected: {k}", v, "tab:red") for k, v in summary["rejected"].items()]
    bars += [(f"file error: {k}", v, "tab:purple") for k, v in summary["file_errors"].items()]
    bars += [(f"skipped: {k}", v, "tab:gray") for k, v in summary["skipped"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    ax.invert_yaxis()
    ax.set_xscale("symlog")
    ax.set_xlabel("records")
    ax.set_title(f"extract: {summary['pages_kept']} of {summary['pages_read']} pages kept, "
                 f"{summary['records_read']} records in {summary['files']} files")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def run(argv: list[str] | None = None) -> dict:
    """Run the extract stage; returns the summary (for a dry run: the parameters only)."""
    args, beam_args, config = parse_args(argv)
    options = pipeline_options(beam_args)
    runner = str(options.get_all_options().get("runner") or "")
    patterns = input_patterns(args.input)
    output = args.output.rstrip("/") if args.output not in ("/",) else args.output
    dry_run = is_dry_run(options)
    check_output_reachable(output, options)

    if dry_run:
        num_shards = args.num_shards  # 0: the runner decides; nothing is listed in a dry run
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, patterns, output, config, num_shards, args.rejects_shards)
        run_pipeline(pipeline)
        return {"stage": "extract", "dry_run": True, "runner": runner, "inputs": patterns, "output": output,
                "num_shards": num_shards, "config": config.to_dict()}

    if not args.overwrite and is_complete(output):
        LOG.info("extract output %s is complete; returning its summary (use --overwrite to recompute)", output)
        return read_json(join(output, SUMMARY))
    num_files, total_bytes = list_inputs(patterns)
    num_shards = args.num_shards  # 0: each bundle streams its rows into its own file
    LOG.info("extract: %d files, %.1f MB -> %s in %s", num_files, total_bytes / 1e6,
             f"{num_shards} shards" if num_shards else "one shard per bundle", output)

    clear_output(output)
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, patterns, output, config, num_shards, args.rejects_shards)
    result = run_pipeline(pipeline)
    wall = time.time() - started

    summary = make_summary(counters(result), inputs=patterns, output=output, config=config, wall_time_s=wall,
                           runner=runner, distributions=_distributions(result))
    summary["num_shards"] = len(FileSystems.match([join(data_dir(output), "*.parquet")])[0].metadata_list)
    if not summary["accounted"]:
        LOG.warning("extract: pages read (%d) != kept (%d) + rejected (%d); see the counters in %s",
                    summary["pages_read"], summary["pages_kept"], summary["pages_rejected"], SUMMARY)
    write_json(join(output, SUMMARY), summary)
    try:
        plot_outcomes(summary, join(output, "outcomes.png"))
    except Exception as exc:  # noqa: BLE001 - a plot must never fail the stage
        LOG.warning("extract: could not draw outcomes.png: %s", exc)
    mark_complete(output, {"pages_kept": summary["pages_kept"], "pages_read": summary["pages_read"]})
    return summary
