"""The second extraction tier: the precise text of the pages the recall rounds kept.

    python -m pipeline.extract.refine --input DIR_OR_GLOB --output DIR [--tier fast|precise]
        [--recheck-cut ROUNDS_DIR] [--num_shards N] [extract stage flags] [any Beam pipeline option]

With ``--tier fast`` (the extract stage's default) the input pages carry the fast tier's text
(``pipeline.extract.fast_text``), which only decided what was recalled. Each page is read again
from its archive by ``warc_path`` + ``warc_offset`` (one seek per record, the records of one file
read by one worker in offset order) and extracted by the precise, math-preserving extractor
exactly as the single-tier extract stage does (same decoder, sandbox, extractor, language id and
row builder), so its text, ``id``, ``title``, ``lang`` and ``num_formulas`` are byte-identical to
what ``--tier precise`` gives for that record; the columns later stages added (``dup_count``,
``math_score``, ``recall_round``) are kept. WET records (their text is the record) and rows with
``--tier precise`` pass through unchanged. With ``--recheck-cut`` (the rounds' output; ``pipeline.run``
passes it) a re-extracted page whose precise text has no formula is kept only if that text, scored by
the last round's model, passes the round's cut (``pipeline.rounds.recheck``); the others are counted
rejects.

A page that cannot be read again (``refetch_failed``: the archive is gone or changed), decoded or
extracted is a counted reject in ``rejects/``, never a failed job. Outputs: ``data/`` shards with
the input's schema, ``rejects/``, ``summary.json`` (rows in/out, refetched, passed through, text
changed, rejects by reason, seconds) and, last, ``_SUCCESS``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics

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
    write_json,
)
from pipeline.extract.pipeline import add_stage_settings
from pipeline.extract.transforms import (
    NAMESPACE as EXTRACT_NAMESPACE,
    REJECTS,
    DecodeFn,
    ExtractConfig,
    ExtractMainTextFn,
    IdentifyLanguageFn,
    document_row,
    reject_row,
)
from pipeline.extract.warc_reader import PageRecord, read_records_at
from pipeline.inputs import check_output_reachable, require_pages
from pipeline.rounds.recheck import FinalCut, RecheckCut, final_cut_of
from pipeline.schema import DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND, make_reject, schema_with

LOG = logging.getLogger(__name__)
NAMESPACE = "refine"
STAGE = "refine"
SUMMARY = "summary.json"


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


def location(row: dict) -> tuple[str, int] | None:
    """``(warc_path, warc_offset)`` of a row, or None when it does not say where its record is."""
    path, offset = row.get("warc_path"), row.get("warc_offset")
    if not path or not isinstance(offset, int) or offset < 0:
        return None
    return path, offset


def needs_refetch(row: dict, tier: str) -> bool:
    """Whether the row's text is the fast tier's (an HTML page extracted with ``tier="fast"``)."""
    return tier == "fast" and row.get("source_format") != "text"


def merge_refined(old: dict, new: dict) -> dict:
    """The refined row: the precise extractor's document columns over the fast row's other columns."""
    return {**old, **new}


class RouteFn(beam.DoFn):
    """Rows -> main: ``((path, offset), row)`` to refetch; ``kept``: rows that pass through."""

    KEPT = "kept"

    def __init__(self, tier: str):
        self.tier = tier

    def process(self, row):
        _count("rows_in")
        if not needs_refetch(row, self.tier):
            _count("passed_through")
            yield beam.pvalue.TaggedOutput(self.KEPT, row)
            return
        where = location(row)
        if where is None:
            _count("rejected:no_archive_location")
            yield beam.pvalue.TaggedOutput(REJECTS, make_reject(STAGE, row.get("warc_path") or "", -1, row.get("url"),
                                                                "no_archive_location",
                                                                "a fast-tier row without warc_path/warc_offset"))
            return
        yield where, row


class ReadRecordsAtFn(beam.DoFn):
    """``(path, offsets)`` -> the ``PageRecord`` at each offset; unreadable ones to ``rejects``."""

    def __init__(self, config: ExtractConfig):
        self.config = config

    def process(self, element):
        path, offsets = element
        offsets = list(offsets)
        _count("files")
        for item in read_records_at(path, offsets, self.config.reader()):
            if isinstance(item, PageRecord):
                _count("refetched")
                yield item
            else:
                _count(f"rejected:{item.reason}")
                yield beam.pvalue.TaggedOutput(REJECTS, reject_row(item, item.reason))


def _keyed_row(labelled) -> tuple[tuple[str, int], dict]:
    row = document_row(labelled.page, labelled.lang, labelled.lang_score)
    return (row["warc_path"], row["warc_offset"]), row


def _merge(element):
    _, grouped = element
    olds, news = list(grouped["old"]), list(grouped["new"])
    new = news[0] if news else None  # None: the refetch or the extraction failed, its reject is written
    for old in olds if new is not None else ():  # one, unless the input holds the same record twice (each keeps its row)
        if new["text"] != old.get("text"):
            _count("text_changed")
        _count("refined")
        yield merge_refined(old, new)


class RefineText(beam.PTransform):
    """Rows (fast tier) -> ``{"rows": rows with the precise text, "rejects": reject rows}``; with a
    ``final_cut``, the re-extracted rows must also pass the last round's cut on their new text
    (``pipeline.rounds.recheck``)."""

    def __init__(self, config: ExtractConfig, final_cut: FinalCut | None = None):
        super().__init__()
        self.config = config
        self.final_cut = final_cut

    def expand(self, rows):
        precise = dataclasses.replace(self.config, tier="precise")
        routed = rows | "Route" >> beam.ParDo(RouteFn(self.config.tier)).with_outputs(RouteFn.KEPT, REJECTS,
                                                                                      main="refetch")
        records = (
            routed.refetch
            | "ByFile" >> beam.Map(lambda kv: (kv[0][0], kv[0][1]))
            | "GroupByFile" >> beam.GroupByKey()
            | "ReadRecordsAt" >> beam.ParDo(ReadRecordsAtFn(precise)).with_outputs(REJECTS, main="pages")
        )
        decoded = records.pages | "Decode" >> beam.ParDo(DecodeFn(precise)).with_outputs(REJECTS, main="pages")
        extracted = decoded.pages | "ExtractMainText" >> beam.ParDo(ExtractMainTextFn(precise)).with_outputs(
            REJECTS, main="pages")
        labelled = extracted.pages | "IdentifyLanguage" >> beam.ParDo(IdentifyLanguageFn(precise)).with_outputs(
            REJECTS, main="pages")
        new_rows = labelled.pages | "ToRows" >> beam.Map(_keyed_row)
        refined = (
            {"old": routed.refetch, "new": new_rows}
            | "JoinByRecord" >> beam.CoGroupByKey()
            | "Merge" >> beam.FlatMap(_merge)
        )
        rejected = [routed[REJECTS], records[REJECTS], decoded[REJECTS], extracted[REJECTS], labelled[REJECTS]]
        if self.final_cut is not None:
            rechecked = refined | "RecheckCut" >> RecheckCut(self.final_cut, NAMESPACE, STAGE)
            refined = rechecked["rows"]
            rejected.append(rechecked["rejects"])
        out = (refined, routed[RouteFn.KEPT]) | "AllRows" >> beam.Flatten()
        rejects = tuple(rejected) | "CollectRejects" >> beam.Flatten()
        return {"rows": out, "rejects": rejects}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.extract.refine", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="pages to refine: a stage folder, a folder of shards or a glob")
    p.add_argument("--output", required=True, help="output folder (local, gs:// or s3://)")
    p.add_argument("--num_shards", type=int, default=1, help="output shards (0: let the runner decide)")
    p.add_argument("--overwrite", action="store_true", help="recompute even if the output is complete")
    p.add_argument("--recheck-cut", "--recheck_cut", dest="recheck_cut", default=None, metavar="ROUNDS_DIR",
                   help="the recall rounds' output: keep a re-extracted page without formulas only if its precise "
                        "text passes the last round's cut (pipeline.rounds.recheck); pipeline.run passes it")
    add_stage_settings(p)
    return p


def pages_schema(input_path: str, dry_run: bool) -> pa.Schema:
    """The schema of the first input file; a dry run reads nothing and assumes every column the
    stages before this one add."""
    if dry_run:
        return schema_with(DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND)
    files = sorted(m.path for m in FileSystems.match([require_pages(input_path)])[0].metadata_list)
    with FileSystems.open(files[0], compression_type="uncompressed") as fh:
        return pq.read_schema(fh).remove_metadata()


def make_summary(counts: dict[str, int], parameters: dict, seconds: float, rechecked: bool = False) -> dict:
    """``summary.json`` from the job's counters (both this stage's and the extractor's rejects);
    ``rechecked``: the refined rows went through the last round's cut again (only those above it are out)."""
    own = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith(f"{NAMESPACE}:")}
    rejected: dict[str, int] = {}
    for key, value in counts.items():
        namespace, _, name = key.partition(":")
        if namespace in (NAMESPACE, EXTRACT_NAMESPACE) and name.startswith("rejected:") and value:
            reason = name[len("rejected:"):]
            rejected[reason] = rejected.get(reason, 0) + int(value)
    rows_in = own.get("rows_in", 0)
    kept_refined = own.get("above_cut_on_precise_text", 0) if rechecked else own.get("refined", 0)
    rows_out = kept_refined + own.get("passed_through", 0)
    return {
        "stage": STAGE,
        "parameters": parameters,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "refetched": own.get("refetched", 0),
        "refined": own.get("refined", 0),
        "passed_through": own.get("passed_through", 0),
        "text_changed": own.get("text_changed", 0),
        "above_cut_on_precise_text": own.get("above_cut_on_precise_text", 0),
        "rejected": dict(sorted(rejected.items())),
        "accounted": rows_out + sum(rejected.values()) == rows_in,
        "seconds": round(seconds, 3),
        "counters": dict(sorted(counts.items())),
    }


def run(argv: Sequence[str] | None = None) -> dict:
    """Run the stage; returns its summary (for a dry run: the parameters only)."""
    args, beam_args = build_parser().parse_known_args(argv)
    config = ExtractConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ExtractConfig)})
    options = pipeline_options(beam_args)
    dry_run = is_dry_run(options)
    output = args.output.rstrip("/")
    check_output_reachable(output, options)
    parameters = {"input": args.input, "output": output, "num_shards": args.num_shards, "config": config.to_dict(),
                  "recheck_cut": args.recheck_cut}
    if not dry_run and not args.overwrite and is_complete(output):
        LOG.info("refine: %s is complete; returning its summary (use --overwrite to recompute)", output)
        return read_json(join(output, SUMMARY))
    started = time.time()
    schema = pages_schema(args.input, dry_run)
    if not dry_run:
        clear_output(output)
    pipeline = beam.Pipeline(options=options)
    rows = pipeline | "ReadPages" >> beam.io.ReadFromParquet(parquet_glob(args.input), validate=not dry_run)
    final_cut = final_cut_of(args.recheck_cut, dry_run) if args.recheck_cut else None
    if args.recheck_cut and final_cut is None:
        LOG.info("refine: the rounds' last cut is a token budget; it is not re-applied to the precise text")
    parameters["final_cut"] = None if final_cut is None else {"round": final_cut.round_index, "cut": final_cut.cut_path}
    out = rows | "Refine" >> RefineText(config, final_cut)
    _ = out["rows"] | "WritePages" >> WriteParquetShards(data_dir(output), schema, args.num_shards)
    _ = out["rejects"] | "WriteRejects" >> WriteRejects(output)
    result = run_pipeline(pipeline)
    if dry_run:
        return {"stage": STAGE, "dry_run": True, "parameters": parameters}
    summary = make_summary(counters(result), parameters, time.time() - started, rechecked=final_cut is not None)
    if not summary["accounted"]:
        LOG.warning("refine: rows in (%d) != out (%d) + rejected (%s)", summary["rows_in"], summary["rows_out"],
                    summary["rejected"])
    write_json(join(output, SUMMARY), summary)
    mark_complete(output, {"rows_in": summary["rows_in"], "rows_out": summary["rows_out"]})
    LOG.info("refine: %d rows, %d re-extracted precisely (%d texts changed), %d passed through, rejects %s",
             summary["rows_in"], summary["refined"], summary["text_changed"], summary["passed_through"],
             summary["rejected"])
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(argv)


if __name__ == "__main__":
    main()
