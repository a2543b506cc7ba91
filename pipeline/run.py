"""One command for the whole corpus: extract -> dedup -> recall rounds -> refine -> decontaminate -> corpus.

``python -m pipeline.run [--config FILE] [--input GLOB ...] [--output DIR] [--force] [--stages a,b]
[any Beam pipeline option]``

With no arguments it runs ``configs/run/sample.yaml``: the sample bundled in the repository,
written to ``./out``; ``configs/run/commoncrawl.yaml`` holds the paper's settings for a real crawl.
Each stage writes into ``<output>/<stage>/`` and marks it complete (``_SUCCESS``) only after all of
its files exist; a rerun skips every stage whose folder is complete, and restarts a stage whose
folder is incomplete from scratch, so an interrupted run never leaves a half-written stage that
looks finished. The YAML config sets every stage's options (``extract: {num_shards: 4}`` becomes
``--num_shards=4`` for the extract stage); Beam options given on the command line, or under
``beam:`` in the YAML, pass through to every stage's job.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from pipeline import beam_utils
from pipeline.inputs import InputError, check_output_reachable, require_files, require_sources
from pipeline.paths import REPO_ROOT, SAMPLE_WARC_GLOB, SEED_DIR

log = logging.getLogger("pipeline.run")

STAGES = ["extract", "dedup", "rounds", "refine", "decontaminate", "corpus"]
SAMPLE_CONFIG = REPO_ROOT / "configs" / "run" / "sample.yaml"


@dataclass
class RunConfig:
    """The whole job. Stage sections are option mappings passed to that stage's command line."""

    input: list[str] = field(default_factory=lambda: [SAMPLE_WARC_GLOB])
    output: str = "out"
    seed: list[str] = field(default_factory=lambda: [str(SEED_DIR / "math_seed.jsonl.gz")])
    beam: dict = field(default_factory=dict)
    extract: dict = field(default_factory=dict)
    dedup: dict = field(default_factory=dict)
    rounds: dict = field(default_factory=dict)
    refine: dict = field(default_factory=dict)  # also gets the extract section's extractor settings
    decontaminate: dict = field(default_factory=dict)
    corpus: dict = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | None) -> RunConfig:
        if not path:
            return cls()
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except FileNotFoundError:
            raise InputError(f"--config {path}: no such file; give a YAML file such as configs/run/sample.yaml") from None
        except yaml.YAMLError as exc:
            raise InputError(f"--config {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise InputError(f"--config {path}: expected a mapping of keys {sorted(cls.__dataclass_fields__)}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"--config {path}: unknown keys {sorted(unknown)}; expected {sorted(cls.__dataclass_fields__)}")
        for key in ("input", "seed"):
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
        return cls(**data)


def options_to_argv(options: dict) -> list[str]:
    """``{"num_shards": 4, "flag": True, "multi": [a, b]}`` -> ``["--num_shards=4", "--flag", "--multi=a", "--multi=b"]``."""
    argv: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            argv.append(f"--{key}")
        elif isinstance(value, (list, tuple)):
            argv += [f"--{key}={v}" for v in value]
        else:
            argv.append(f"--{key}={value}")
    return argv


@dataclass
class StagePlan:
    name: str
    module: str  # module exposing run(argv) -> dict
    argv: list[str]
    output: str


def stage_dir(output: str, name: str) -> str:
    return beam_utils.join(output, name)


def plan_stages(cfg: RunConfig, beam_args: Sequence[str]) -> list[StagePlan]:
    """The command line of every stage, wired output-to-input."""
    out = cfg.output
    beam_argv = options_to_argv(cfg.beam) + list(beam_args)
    d = {name: stage_dir(out, name) for name in STAGES}
    plans = [
        StagePlan("extract", "pipeline.extract.pipeline",
                  [f"--input={g}" for g in cfg.input] + [f"--output={d['extract']}"], d["extract"]),
        StagePlan("dedup", "pipeline.dedup.pipeline", [f"--input={d['extract']}", f"--output={d['dedup']}"], d["dedup"]),
        StagePlan("rounds", "pipeline.rounds.pipeline",
                  [f"--pool={d['dedup']}"] + [f"--seed={s}" for s in cfg.seed] + [f"--output={d['rounds']}"], d["rounds"]),
        StagePlan("refine", "pipeline.extract.refine",
                  [f"--input={recalled_dir(d['rounds'])}", f"--output={d['refine']}", f"--recheck-cut={d['rounds']}"]
                  + options_to_argv(extractor_settings(cfg.extract)), d["refine"]),
        StagePlan("decontaminate", "pipeline.decontaminate.pipeline",
                  [f"--input={d['refine']}", f"--output={d['decontaminate']}"], d["decontaminate"]),
        StagePlan("corpus", "pipeline.corpus.pipeline",
                  [f"--input={d['decontaminate']}", f"--output={d['corpus']}", f"--lineage={lineage_path(out)}"], d["corpus"]),
    ]
    for plan in plans:
        plan.argv += options_to_argv(getattr(cfg, plan.name)) + beam_argv
    return plans


def extractor_settings(extract: dict) -> dict:
    """The part of the extract section that says how pages are extracted (the tier, limits), which
    the refine stage must extract the recalled pages with."""
    from pipeline.extract.transforms import ExtractConfig

    names = {f.name for f in dataclasses.fields(ExtractConfig)}
    return {k: v for k, v in extract.items() if k in names}


def lineage_path(output: str) -> str:
    """The earlier stages' summaries and the run's parameters, handed to the corpus stage's card."""
    return beam_utils.join(output, "lineage.json")


def recalled_dir(rounds_dir: str) -> str:
    """Where the recall rounds leave the final recalled pages."""
    return beam_utils.join(rounds_dir, "recalled")


def run_stage(plan: StagePlan, force: bool = False, dry_run: bool = False) -> tuple[dict, bool]:
    """Run one stage unless its output is complete; returns (summary, skipped).

    ``force`` (set for every stage after one that ran, since its input changed) clears the old
    output first, so the stage cannot return a stale complete result. A dry run (the job is only
    built, e.g. ``--runner=DataflowRunner --dry_run=True``) touches no output at all.
    """
    if not dry_run and not force and beam_utils.is_complete(plan.output):
        summary_path = beam_utils.join(plan.output, "summary.json")
        summary = beam_utils.read_json(summary_path) if beam_utils.FileSystems.exists(summary_path) else {}
        return summary, True
    module = importlib.import_module(plan.module)
    if force and not dry_run:
        beam_utils.clear_output(plan.output)
    return module.run(plan.argv), False


def parse_args(argv: Sequence[str] | None):
    parser = argparse.ArgumentParser(prog="python -m pipeline.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(SAMPLE_CONFIG),
                        help="YAML file with every stage's options (default: configs/run/sample.yaml, the bundled sample)")
    parser.add_argument("--input", action="extend", nargs="+", help="WARC/ARC/WET files or globs (several, or repeated); default: the bundled sample")
    parser.add_argument("--output", help="output folder (local, gs:// or s3://); default ./out")
    parser.add_argument("--seed", action="extend", nargs="+", help="seed positives (Parquet/JSONL with a text column; several, or repeated)")
    parser.add_argument("--force", action="store_true", help="rerun stages even when their output is complete")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of stages to run, in order")
    return parser.parse_known_args(argv)


def run(argv: Sequence[str] | None = None) -> dict:
    """Run the chain; returns ``{stage: summary}`` and writes the run report."""
    from pipeline.report import write_run_report

    args, beam_args = parse_args(argv)
    cfg = RunConfig.from_yaml(args.config)
    if args.input:
        cfg.input = args.input
    if args.output:
        cfg.output = args.output
    if args.seed:
        cfg.seed = args.seed
    wanted = [s for s in args.stages.split(",") if s]
    unknown = set(wanted) - set(STAGES)
    if unknown:
        raise InputError(f"--stages: unknown stages {sorted(unknown)}; choose from {','.join(STAGES)}")
    summaries: dict[str, dict] = {}
    started = time.time()
    force = args.force
    options = beam_utils.pipeline_options(options_to_argv(cfg.beam) + list(beam_args))
    dry_run = beam_utils.is_dry_run(options)
    check_inputs(cfg, wanted, options, force)
    for i, plan in enumerate(plan_stages(cfg, beam_args), 1):
        if plan.name not in wanted:
            continue
        t0 = time.time()
        if plan.name == "corpus" and not dry_run and (force or not beam_utils.is_complete(plan.output)):
            beam_utils.write_json(lineage_path(cfg.output), {
                "stages": summaries, "sources": list(cfg.input),
                "parameters": {name: getattr(cfg, name) for name in STAGES + ["beam"]}})
        print(f"[{i}/{len(STAGES)}] {plan.name}: {plan.output}", flush=True)
        summary, skipped = run_stage(plan, force=force, dry_run=dry_run)
        force = force or not skipped  # a stage that ran changes the input of every later stage
        if not skipped and not dry_run:
            summary = record_timing(plan, summary, time.time() - t0)
        summaries[plan.name] = summary
        if dry_run:
            note = f"dry run: job built, not submitted ({time.time() - t0:.1f}s)"
        else:
            note = "skipped (complete)" if skipped else f"done in {time.time() - t0:.1f}s"
        print(f"[{i}/{len(STAGES)}] {plan.name}: {note} {headline(summary)}", flush=True)
    if dry_run:
        print(f"dry run: {len(summaries)} job(s) built, nothing submitted, nothing written under {cfg.output}")
        return summaries
    if "corpus" in summaries:
        write_run_report(cfg, summaries, wall_seconds=time.time() - started)
        print(f"report: {beam_utils.join(cfg.output, 'report.md')}")
    return summaries


def record_timing(plan: StagePlan, summary: dict, seconds: float) -> dict:
    """``summary`` plus ``timing`` (seconds of the stage's job, its input pages per second), also
    written into the stage's ``summary.json``; a stage reused from an earlier run keeps its own."""
    from pipeline.report import stage_timing

    summary = {**summary, "timing": stage_timing(summary, seconds)}
    path = beam_utils.join(plan.output, "summary.json")
    if beam_utils.FileSystems.exists(path):
        marker = beam_utils.read_json(beam_utils.join(plan.output, beam_utils.SUCCESS_MARKER))
        beam_utils.write_json(path, summary)
        beam_utils.mark_complete(plan.output, {k: v for k, v in marker.items() if k != "completed_at"})  # still last
    return summary


def check_inputs(cfg: RunConfig, wanted: Sequence[str], options, force: bool) -> None:
    """Refuse a run that cannot succeed before any stage starts, with one line each (``InputError``):
    a local ``--output`` for a Dataflow job, WARC globs that match nothing, a missing seed.
    A dry run only builds jobs, so it lists nothing (``gs://`` may be unreachable)."""
    check_output_reachable(cfg.output, options)
    if beam_utils.is_dry_run(options):
        return
    if "extract" in wanted and (force or not beam_utils.is_complete(stage_dir(cfg.output, "extract"))):
        for pattern in cfg.input:
            require_files(pattern, "--input", "give a glob of WARC/ARC/WET files, e.g. 'crawl/*.warc.gz'")
    if "rounds" in wanted and (force or not beam_utils.is_complete(stage_dir(cfg.output, "rounds"))):
        require_sources(cfg.seed, "--seed")


def headline(summary: dict) -> str:
    """``(in=…, out=…)`` for a stage's console line."""
    from pipeline.report import _IN_KEYS, _OUT_KEYS, _first_int

    rows_in, rows_out = _first_int(summary, *_IN_KEYS), _first_int(summary, *_OUT_KEYS)
    parts = [f"{k}={v:,}" for k, v in (("in", rows_in), ("out", rows_out), ("tokens", summary.get("tokens"))) if isinstance(v, int)]
    return ("(" + ", ".join(parts) + ")") if parts else ""


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Progress of our own stages (rounds, thresholds, counts) on the console; Beam's INFO stays quiet.
    for name in ("pipeline", "classifiers"):
        logging.getLogger(name).setLevel(logging.INFO)
    run(argv)


if __name__ == "__main__":
    main()
