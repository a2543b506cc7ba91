"""The recall rounds: ``python -m pipeline.rounds --pool DIR --seed SEED --output DIR [--rounds 4]
[--token-budget N] [--positives-per-round 500000] [--negatives-per-round 500000] [--paths FILE]``.

Method (DeepSeekMath section 2.1, steps 2-5), round r = 1, 2, ...:
1. Prepare (Beam): pages under the accepted URL paths that round r-1 did not recall become new
   positives; a uniform sample of the pages carrying math markup become markup positives; the
   negatives are a uniform sample of ``negatives_per_round`` *clean* pool pages: not under an
   accepted path, without markup, not of a math domain, not recalled before (each exclusion
   counted in the summary).
2. Train (driver, ``training.py``): two cross-fitted fastText classifiers (paper settings) on
   the seed plus the pool's positives vs the negatives; each scores the pages it never saw.
3. Recall (Beam): score the pool, cut it (``calibration.py``: the cut with the best implied
   F1 from the score histograms of the pool, of its markup pages and of the negatives; or, with
   ``--token-budget``, the paper's top-N-tokens cut, ``budget.py``; pages with formulas and pages
   under ``--paths`` are recalled above a lower floor), mark domains whose recalled
   share is above 10% with evidence (Wilson lower bound, at least 3 pages) as math, aggregate
   their URL path prefixes, join with the recall history.
4. Tables and report (driver): ``domains.tsv``, the editable ``paths.tsv`` (proposals; accepted
   rows are used by the next round as they are, or as a person edited them), ``report.md``
   with the numbers and plots, ``summary.json``, ``_SUCCESS``.
The loop stops after ``--rounds`` or when at most ``--saturation-new-share`` (2%) of a round's
recalled tokens are new, i.e. had never been recalled before (the paper stopped when ~98% of
round four's data had been collected in round three).

Departures from the paper (see also ``docs/classifier.md``):
- The cut is calibrated on the pool instead of a token budget fixed in advance (the budget is
  still ``--token-budget``); pages with math markup, and pages under the paths a person gives
  with ``--paths`` (the paper's hand-annotated paths), are recalled above a lower floor.
- Pool pages with math markup, and the pages recalled last round, are positives besides the
  paper's discovered pages; at most ``--max-discovered-share`` (50%) of the positives come from
  the pool, the rest is a uniform sample of the seed.
- Two cross-fitted models per round instead of one; more epochs on small training sets.
- URL paths are proposed automatically (``discovery.py``) instead of chosen by hand; a person can
  still edit ``paths.tsv`` or pass ``--paths FILE``, which then replaces the proposals for every
  round this invocation runs.
- Token counts are words plus CJK characters unless ``--tokenizer`` names a local tokenizer.

Output (``--output``): ``round_<r>/`` per round, ``recalled/`` (the last round's recalled pages:
pool columns + ``math_score``, ``recall_round`` = first round that recalled the page,
``num_tokens``), ``summary.json``, ``report.md``, ``rounds.png`` and ``_SUCCESS``. Finished
rounds (``round_<r>/_SUCCESS``) are not rerun, so an interrupted run resumes where it stopped.

With ``--runner=DataflowRunner --dry_run=True`` only round one's two Beam jobs are built (not
submitted), and nothing is read on the driver.
"""
from __future__ import annotations

import itertools
import logging
import os
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.inputs import require_pages, require_sources
from classifiers.train import TrainingDataError
from pipeline.beam_utils import (
    clear_output,
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
from pipeline.rounds import discovery, report
from pipeline.rounds.config import RoundsConfig, parse_config
from pipeline.rounds.training import model_paths, round_dir, train_round_classifiers
from pipeline.rounds.transforms import SCORE_BINS, build_prepare_pipeline, build_recall_pipeline, recalled_schema
from pipeline.score.pipeline import DRY_RUN_INPUT_SCHEMA, input_schema

LOG = logging.getLogger(__name__)
SUMMARY = "summary.json"


def _read_text(path: str) -> str:
    with FileSystems.open(path) as fh:
        return fh.read().decode("utf-8")


def _read_jsonl(path: str) -> list[dict]:
    import json

    if not FileSystems.exists(path):
        return []
    return [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]


def accepted_paths_for(cfg: RoundsConfig, r: int) -> list[tuple[str, str]]:
    """The (domain, prefix) pairs round r harvests: ``--paths`` if given, else the accepted rows
    of every earlier round's ``paths.tsv`` (as they are on disk now, edits included)."""
    if cfg.paths:
        return discovery.accepted_paths(_read_text(cfg.paths))
    accepted: set[tuple[str, str]] = set()
    for k in range(1, r):
        path = join(round_dir(cfg.output, k), "paths.tsv")
        if FileSystems.exists(path):
            accepted.update(discovery.accepted_paths(_read_text(path)))
    return sorted(accepted)


def _run_beam(build, options, **kwargs) -> None:
    p = beam.Pipeline(options=options)
    build(p, **kwargs)
    run_pipeline(p)


def math_domains_before(cfg: RoundsConfig, r: int) -> list[str]:
    """The math domains of round r-1 (their pages are not negatives of round r)."""
    if r <= 1:
        return []
    rows = _read_jsonl(join(round_dir(cfg.output, r - 1), "tables", "domains.jsonl"))
    return sorted(d["domain"] for d in rows if discovery.is_math_domain(
        discovery.RecallStats(d["pages"], d["recalled"], d["tokens"], d["recalled_tokens"]),
        cfg.domain_min_share, cfg.domain_min_pages))


def _prepare_kwargs(cfg: RoundsConfig, r: int, pool_glob: str, accepted, dry_run: bool,
                    has_formulas: bool = True) -> dict:
    out = round_dir(cfg.output, r)
    return dict(
        pool_glob=pool_glob, out_dir=out, accepted=accepted,
        previous_recalled_glob=parquet_glob(join(round_dir(cfg.output, r - 1), "recalled")) if r > 1 else None,
        prior_positive_globs=[parquet_glob(join(round_dir(cfg.output, k), "positives")) for k in range(1, r)],
        negatives=cfg.negatives_per_round, salt=cfg.random_seed,
        math_domains=[] if dry_run else math_domains_before(cfg, r),
        markup_positives=int(cfg.positives_per_round * cfg.max_discovered_share),
        markup_min_formulas=cfg.markup_min_formulas, has_formulas=has_formulas, dry_run=dry_run,
    )


def _recall_kwargs(cfg: RoundsConfig, r: int, pool_glob: str, pool_schema, dry_run: bool,
                   seed_histogram: dict | None = None, accepted=()) -> dict:
    out = round_dir(cfg.output, r)
    return dict(
        pool_glob=pool_glob, pool_schema=pool_schema, out_dir=out, model_path=model_paths(cfg.output, r),
        round_index=r, budget=cfg.token_budget, negatives_glob=parquet_glob(join(out, "negatives")),
        seed_histogram=seed_histogram or {}, markup_min_formulas=cfg.markup_min_formulas,
        markup_floor_quantile=cfg.markup_floor_quantile, renderer_floor_quantile=cfg.renderer_floor_quantile,
        cut_beta=cfg.cut_beta, min_positive_evidence=cfg.min_positive_evidence,
        previous_history_glob=parquet_glob(join(round_dir(cfg.output, r - 1), "history")) if r > 1 else None,
        tokenizer=cfg.tokenizer, batch_size=cfg.batch_size, max_tokens=cfg.max_tokens,
        domain_min_share=cfg.domain_min_share, domain_min_pages=cfg.domain_min_pages,
        path_min_pages=cfg.path_min_pages, path_max_depth=cfg.path_max_depth, num_shards=cfg.num_shards,
        accepted=list(accepted), dry_run=dry_run,
    )


def _stats_tuple(stats: dict, key: str) -> list[int]:
    return list(stats.get(key) or [0, 0, 0, 0])


def summarize_round(cfg: RoundsConfig, r: int, training: dict, prepare: dict, tables: dict,
                    path_proposals: list[discovery.PathProposal], math_domains: list[dict], seconds: float) -> dict:
    """The round's ``summary.json`` from what its jobs wrote (pure; see ``report.round_report_md``)."""
    stats, cut = tables["stats"], tables["stats"]["threshold"]
    bins = {str(b): _stats_tuple(stats, f"score_bin:{b}") for b in range(SCORE_BINS)}
    totals = [sum(v[i] for v in bins.values()) for i in range(4)]
    overlap = _stats_tuple(stats, "overlap")  # recalled pages, tokens, of which in previous round: pages, tokens
    new = _stats_tuple(stats, "new")  # recalled pages, tokens never recalled before
    weak = _stats_tuple(stats, "new_by_renderer")  # of which recalled only for their math renderer
    validation = training.get("validation") or {}
    accepted = [p for p in path_proposals if p.accept]
    calibrated = cut.get("mode") == "calibrated"
    return {
        "round": r,
        "cut": "calibrated" if calibrated else "token_budget",
        "budget": cfg.token_budget,
        "threshold": cut["threshold_score"],
        "threshold_key": cut.get("threshold_key"),
        "all_selected": cut.get("all_selected", False),
        "estimated_precision": cut.get("estimated_precision") if calibrated else None,
        "estimated_recall": cut.get("estimated_recall") if calibrated else None,
        "estimated_math_share": cut.get("estimated_math_share") if calibrated else None,
        "positive_evidence": cut.get("positive_evidence") if calibrated else None,
        "positive_evidence_pages": cut.get("positive_pages") if calibrated else None,
        "negative_evidence_pages": cut.get("negative_pages") if calibrated else None,
        "markup_floor": cut.get("markup_floor") if calibrated else None,
        "renderer_floor": cut.get("renderer_floor") if calibrated else None,
        "markup_pages": _stats_tuple(prepare, "markup_pages")[0],
        "pool_pages": totals[0],
        "pool_tokens": totals[2],
        "recalled": totals[1],
        "recalled_tokens": totals[3],
        "new_pages": new[0],
        "new_tokens": new[1],
        # saturation: the share of new tokens recalled on the pages' strong evidence (the renderer
        # floor decides its pages alone; near a floor that moves each round they would keep the loop going)
        "new_share": ((new[1] - weak[1]) / totals[3] if totals[3] else 0.0),
        "new_tokens_by_renderer": weak[1],
        "new_page_share": (new[0] / totals[1] if totals[1] else 0.0),
        "overlap_with_previous": (overlap[3] / overlap[1] if overlap[1] else 0.0) if r > 1 else None,
        "overlap_pages_with_previous": (overlap[2] / overlap[0] if overlap[0] else 0.0) if r > 1 else None,
        "dropped_since_previous": _stats_tuple(stats, "dropped_since_previous")[0] if r > 1 else None,
        "saturation_new_share": cfg.saturation_new_share,
        "new_positives": _stats_tuple(prepare, "new_positives")[0],
        "markup_positives": _stats_tuple(prepare, "markup_positives")[0],
        "under_accepted_paths": _stats_tuple(prepare, "under_accepted_paths")[0],
        "recalled_by_accepted_path": _stats_tuple(stats, "recalled_by_accepted_path")[0],
        "recalled_by_math_renderer": _stats_tuple(stats, "recalled_by_math_renderer")[0],
        "negatives_excluded": {k.split(":", 1)[1]: v[0] for k, v in prepare.items()
                               if k.startswith("negatives_excluded:")},
        "train_positives_seed": training["read"]["seed"]["used"],
        "train_positives_discovered": training["read"]["discovered"]["used"],
        "train_negatives": training["read"]["negatives"]["used"],
        "cross_fit_folds": training.get("folds", 1),
        "epochs": training.get("epochs"),
        "validation": validation,
        "val_roc_auc": validation.get("roc_auc"),
        "train_seconds": training["train_seconds"],
        "domain_min_share": cfg.domain_min_share,
        "domain_min_pages": cfg.domain_min_pages,
        "math_domains": len(math_domains),
        "top_math_domains": math_domains[:50],
        "proposed_paths": len(path_proposals),
        "accepted_paths": len(accepted),
        "top_accepted_paths": [{"domain": p.domain, "path_prefix": p.prefix, "pages": p.stats.pages,
                                "recalled": p.stats.recalled, "missed": p.stats.missed,
                                "share_lower_bound": round(p.stats.share_lower_bound, 4)} for p in accepted[:50]],
        "rejected_by_reason": {k.split(":", 1)[1]: v[0] for k, v in stats.items() if k.startswith("rejected:")},
        "score_histogram": bins,
        "wall_seconds": round(seconds, 3),
    }


class RoundsStopped(Exception):
    """A later round cannot run (for example no clean negative is left): the loop ends with the
    previous round's recall, and the reason goes into the summary."""


def run_round(cfg: RoundsConfig, r: int, options, pool_glob: str, pool_schema, previous: list[dict]) -> dict:
    """Run round r end to end and mark its folder complete; returns its summary."""
    started = time.time()
    out = round_dir(cfg.output, r)
    clear_output(out)
    accepted = accepted_paths_for(cfg, r)
    LOG.info("round %d: prepare (%d accepted paths)", r, len(accepted))
    has_formulas = "num_formulas" in pool_schema.names
    _run_beam(build_prepare_pipeline, options, **_prepare_kwargs(cfg, r, pool_glob, accepted, False, has_formulas))
    prepare = read_json(join(out, "tables", "prepare_stats.json"))
    LOG.info("round %d: train (%d cross-fitted models)", r, len(model_paths(cfg.output, r)))
    try:
        training = train_round_classifiers(cfg, r)
    except TrainingDataError as exc:
        if r > 1:  # the earlier rounds recalled (or excluded) every page that could be a negative
            raise RoundsStopped(f"stopped before round {r}: no training data left ({exc}); "
                                f"round {r - 1}'s recall is kept") from exc
        raise RuntimeError(f"round {r}: cannot train a classifier ({exc}); check --seed and --pool") from exc
    write_json(join(out, "training.json"), training)
    LOG.info("round %d: score and recall", r)
    _run_beam(build_recall_pipeline, options, **_recall_kwargs(cfg, r, pool_glob, pool_schema, False,
                                                               training["seed_validation_histogram"],
                                                               accepted if cfg.paths else ()))

    tables = {"stats": read_json(join(out, "tables", "stats.json"))}
    domain_stats = {d["domain"]: discovery.RecallStats(d["pages"], d["recalled"], d["tokens"], d["recalled_tokens"])
                    for d in _read_jsonl(join(out, "tables", "domains.jsonl"))}
    math = {d for d, s in domain_stats.items() if discovery.is_math_domain(s, cfg.domain_min_share, cfg.domain_min_pages)}
    path_stats = {(p["domain"], p["path_prefix"]): discovery.RecallStats(p["pages"], p["recalled"], p["tokens"],
                                                                         p["recalled_tokens"])
                  for p in _read_jsonl(join(out, "tables", "paths.jsonl"))}
    proposals = discovery.propose_paths(path_stats, cfg.path_min_share, cfg.path_min_pages)
    write_bytes(join(out, "domains.tsv"), discovery.domains_tsv(domain_stats, math).encode("utf-8"))
    write_bytes(join(out, "paths.tsv"), discovery.paths_tsv(proposals).encode("utf-8"))
    math_domains = [{"domain": d, "pages": s.pages, "recalled": s.recalled, "share": s.share,
                     "share_lower_bound": round(s.share_lower_bound, 4)}
                    for d, s in sorted(domain_stats.items(), key=lambda kv: (-kv[1].recalled, kv[0])) if d in math]

    summary = summarize_round(cfg, r, training, prepare, tables, proposals, math_domains, time.time() - started)
    write_bytes(join(out, "score_histogram.png"), report.score_histogram_png(summary))
    write_bytes(join(out, "rounds.png"), report.rounds_png(previous + [summary]))
    write_bytes(join(out, "report.md"), report.round_report_md(summary).encode("utf-8"))
    write_json(join(out, SUMMARY), summary)
    mark_complete(out, {"recalled": summary["recalled"]})
    return summary


def _copy_files(src_glob: str, dst_dir: str) -> int:
    files = sorted(m.path for m in FileSystems.match([src_glob])[0].metadata_list)
    clear_output(dst_dir)
    if "://" not in dst_dir:
        os.makedirs(dst_dir, exist_ok=True)
    FileSystems.copy(files, [join(dst_dir, f.rsplit("/", 1)[-1]) for f in files])
    return len(files)


def _dry_run(cfg: RoundsConfig, options) -> dict:
    """Build round one's two Beam jobs without reading anything on the driver (nothing is submitted)."""
    pool_glob = parquet_glob(cfg.pool)
    _run_beam(build_prepare_pipeline, options, **_prepare_kwargs(cfg, 1, pool_glob, [], True,
                                                                 "num_formulas" in DRY_RUN_INPUT_SCHEMA.names))
    _run_beam(build_recall_pipeline, options, **_recall_kwargs(cfg, 1, pool_glob, DRY_RUN_INPUT_SCHEMA, True))
    return {"stage": "rounds", "dry_run": True, "parameters": cfg.to_dict(),
            "output_schema": recalled_schema(DRY_RUN_INPUT_SCHEMA).names}


def run(argv: list[str] | None = None) -> dict:
    """Runs the recall rounds; returns the overall summary (for a dry run: the parameters only)."""
    cfg, beam_args = parse_config(argv)
    options = pipeline_options(beam_args)
    if is_dry_run(options):
        return _dry_run(cfg, options)
    if is_complete(cfg.output):
        LOG.info("rounds output %s is complete; returning its summary", cfg.output)
        return read_json(join(cfg.output, SUMMARY))
    started = time.time()
    require_sources(cfg.seed, "--seed")  # one line, before any work
    pool_glob = require_pages(cfg.pool, "--pool")
    pool_schema = input_schema(pool_glob)
    summaries: list[dict] = []
    stop_reason = f"reached --rounds {cfg.rounds}"
    for r in range(1, cfg.rounds + 1):
        if is_complete(round_dir(cfg.output, r)):
            summary = read_json(join(round_dir(cfg.output, r), SUMMARY))
            LOG.info("round %d is complete; reusing it", r)
        else:
            try:
                summary = run_round(cfg, r, options, pool_glob, pool_schema, summaries)
            except RoundsStopped as stopped:
                LOG.warning("%s", stopped)
                stop_reason = str(stopped)
                break
        summaries.append(summary)
        LOG.info("round %d: cut %.4f (estimated precision %s, recall %s); recalled %d pages / %d tokens, "
                 "%.1f%% of the tokens new", r, summary["threshold"], summary.get("estimated_precision"),
                 summary.get("estimated_recall"), summary["recalled"], summary["recalled_tokens"],
                 100 * summary["new_share"])
        if r > 1 and summary["new_share"] <= cfg.saturation_new_share:
            stop_reason = (f"saturated in round {r}: {1 - summary['new_share']:.1%} of the recalled tokens had been "
                           f"recalled before (new share {summary['new_share']:.1%} <= {cfg.saturation_new_share:.0%})")
            break
    last = summaries[-1]
    _copy_files(parquet_glob(join(round_dir(cfg.output, last["round"]), "recalled")), join(cfg.output, "recalled"))
    overall = {
        "stage": "rounds",
        "pool_rows": last["pool_pages"],
        "recalled": last["recalled"],
        "recalled_tokens": last["recalled_tokens"],
        "stop_reason": stop_reason,
        "rounds": [{k: v for k, v in s.items() if k not in ("score_histogram", "top_math_domains", "top_accepted_paths")}
                   for s in summaries],
        "math_domains_final": [d["domain"] for d in last["top_math_domains"]],
        "parameters": cfg.to_dict(),
        "wall_seconds": round(time.time() - started, 3),
    }
    write_bytes(join(cfg.output, "rounds.png"), report.rounds_png(summaries))
    write_bytes(join(cfg.output, "report.md"), report.overall_report_md(overall).encode("utf-8"))
    write_json(join(cfg.output, SUMMARY), overall)
    mark_complete(cfg.output, {"recalled": overall["recalled"], "rounds": len(summaries)})
    return overall
