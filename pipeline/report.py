"""The run report: one ``report.md`` (plus PNGs) that tells the story of a ``pipeline.run``.

Pages per stage (a funnel), what each stage dropped and why, the recall rounds, the math domains
found, and the final corpus. It reads only the stages' ``summary.json`` files, so it can be
rebuilt at any time from a finished output folder.
"""
from __future__ import annotations

import io
import json
from typing import Any

from pipeline import beam_utils


def _get(summary: dict, path: str):
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _first_int(summary: dict, *paths: str) -> int | None:
    for path in paths:
        value = _get(summary, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


# Where each stage's summary.json keeps its counts: (rows in, rows out, {reason label: mapping path}).
_IN_KEYS = ("rows_in", "pages_read", "counts.input_rows", "pool_rows", "pages.in", "input_rows")
_OUT_KEYS = ("rows_out", "pages_kept", "counts.kept", "recalled", "pages.kept", "rows", "kept")
# Mappings of pages dropped by reason.
_REASON_MAPS = ("rejected", "counts.removed", "counts.rejected", "rejects", "rejected_by_reason", "removed_by_reason")
# Mappings of archive records skipped by reason (extract's WARC request/metadata/non-HTML records): not pages.
_RECORD_MAPS = ("skipped",)
BELOW_CUT = "below the rounds' cut"


def stage_rows(summaries: dict[str, dict]) -> list[tuple[str, int | None, int | None]]:
    """(stage, rows in, rows out) for each stage, from the keys the stages write."""
    return [(name, _first_int(s, *_IN_KEYS), _first_int(s, *_OUT_KEYS)) for name, s in summaries.items()]


def stage_timing(summary: dict, seconds: float) -> dict:
    """``{"seconds", "pages_in", "pages_per_s"}`` of one stage's run (its input rows per second)."""
    pages = _first_int(summary, *_IN_KEYS)
    return {"seconds": round(seconds, 3), "pages_in": pages,
            "pages_per_s": round(pages / seconds, 2) if pages is not None and seconds > 0 else None}


def timing_rows(summaries: dict[str, dict]) -> list[tuple[str, float, float | None, float]]:
    """(stage, seconds, input pages per second, share of the stages' time) for the stages that
    carry a ``timing`` (the ones that ran in this invocation or an earlier one of the chain)."""
    timed = [(n, s["timing"]) for n, s in summaries.items() if isinstance(s.get("timing"), dict)]
    total = sum(t["seconds"] for _, t in timed) or 1.0
    return [(n, t["seconds"], t.get("pages_per_s"), t["seconds"] / total) for n, t in timed]


def _merged_counts(summary: dict, paths: tuple[str, ...]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for path in paths:
        mapping = _get(summary, path)
        if isinstance(mapping, dict):
            for reason, n in mapping.items():
                if isinstance(n, (int, float)) and not isinstance(n, bool) and n:
                    merged[reason] = merged.get(reason, 0) + int(n)
    return merged


def skipped_records(summaries: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Per stage, the archive records skipped because they are not pages (WARC requests, metadata,
    non-HTML responses ...): {stage: {reason: records}}, most first."""
    result = {}
    for name, s in summaries.items():
        merged = _merged_counts(s, _RECORD_MAPS)
        if merged:
            result[name] = dict(sorted(merged.items(), key=lambda kv: -kv[1]))
    return result


def drop_reasons(summaries: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Per stage, the pages dropped and why: {stage: {reason: pages}} (zero counts left out).

    The recall rounds' drop is the pool pages below the final round's cut (``pool_rows - recalled``)."""
    result: dict[str, dict[str, int]] = {}
    for name, s in summaries.items():
        merged: dict[str, int] = {}
        pool, recalled = _first_int(s, "pool_rows"), _first_int(s, "recalled")
        if pool is not None and recalled is not None and pool > recalled:
            merged[BELOW_CUT] = pool - recalled
        for path in _REASON_MAPS:
            mapping = _get(s, path)
            if isinstance(mapping, dict):
                for reason, n in mapping.items():
                    if isinstance(n, (int, float)) and not isinstance(n, bool) and n:
                        merged[reason] = merged.get(reason, 0) + int(n)
        per_benchmark = s.get("per_benchmark")
        if isinstance(per_benchmark, dict):
            for bench, info in per_benchmark.items():
                pages = info.get("pages") if isinstance(info, dict) else None
                if pages:
                    merged[f"contaminated:{bench}"] = int(pages)
        if merged:
            result[name] = dict(sorted(merged.items(), key=lambda kv: -kv[1]))
    return result


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def funnel_png(rows: list[tuple[str, int | None, int | None]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r[0] for r in rows]
    kept = [r[2] or 0 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh(names[::-1], kept[::-1], color="#4878a8")
    ax.bar_label(bars, labels=[f"{v:,}" for v in kept[::-1]], padding=3, fontsize=8)
    ax.set_xlabel("pages out of the stage")
    ax.set_title("Pages per stage")
    plt.close(fig)
    return _png(fig)


PAGE_COLOUR, RECORD_COLOUR = "#c0504d", "#8c8c8c"


def drops_png(drops: dict[str, dict[str, int]], records: dict[str, dict[str, int]] | None = None) -> bytes:
    """Bar chart: pages dropped by stage and reason (red), and archive records skipped as not pages (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    labels, values, colours = [], [], []
    for stage, reasons in drops.items():
        for reason, n in list(reasons.items())[:8]:
            labels.append(f"{stage}: {reason}")
            values.append(n)
            colours.append(PAGE_COLOUR)
    for stage, reasons in (records or {}).items():
        for reason, n in list(reasons.items())[:8]:
            labels.append(f"{stage}: skipped record: {reason}")
            values.append(n)
            colours.append(RECORD_COLOUR)
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(4, len(labels)) + 1))
    bars = ax.barh(labels[::-1], values[::-1], color=colours[::-1])
    ax.bar_label(bars, labels=[f"{v:,}" for v in values[::-1]], padding=3, fontsize=8)
    ax.set_xlabel("pages dropped (red) / archive records skipped (grey)")
    ax.legend(handles=[Patch(color=PAGE_COLOUR, label="pages dropped"),
                       Patch(color=RECORD_COLOUR, label="WARC records skipped (not pages)")], fontsize=8, loc="lower right")
    ax.set_title("Dropped pages and skipped records, by stage and reason")
    plt.close(fig)
    return _png(fig)


def _fmt(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else ("-" if v is None else str(v))


def render_report(cfg, summaries: dict[str, dict], wall_seconds: float) -> str:
    rows = stage_rows(summaries)
    drops = drop_reasons(summaries)
    records = skipped_records(summaries)
    lines = ["# Corpus run report", ""]
    lines += [f"- input: {', '.join(f'`{i}`' for i in cfg.input)}", f"- output: `{cfg.output}`",
              f"- wall time: {wall_seconds:.1f} s", ""]
    lines += ["## Pages per stage", "", "![pages per stage](report_funnel.png)", "",
              "| stage | in | out |", "|---|---|---|"]
    lines += [f"| {n} | {_fmt(i)} | {_fmt(o)} |" for n, i, o in rows]
    lines.append("")
    timing = timing_rows(summaries)
    if timing:
        lines += ["## Time per stage", "", "| stage | seconds | pages/s (input) | share of the run |", "|---|---|---|---|"]
        lines += [f"| {n} | {sec:.1f} | {'-' if pps is None else f'{pps:,.1f}'} | {share:.0%} |"
                  for n, sec, pps, share in timing]
        lines.append("")
    if drops or records:
        lines += ["## Dropped, by reason", "", "![drops](report_drops.png)", "", "Pages dropped:", ""]
        for stage, reasons in drops.items():
            lines.append(f"- **{stage}**: " + ", ".join(f"{r} {_fmt(n)}" for r, n in reasons.items()))
        if records:
            lines += ["", "Archive records skipped before extraction (not pages: requests, metadata, non-HTML):", ""]
            for stage, reasons in records.items():
                lines.append(f"- **{stage}**: " + ", ".join(f"{r} {_fmt(n)} records" for r, n in reasons.items()))
        lines.append("")
    rounds = summaries.get("rounds") or {}
    per_round = rounds.get("rounds") if isinstance(rounds.get("rounds"), list) else None
    if per_round:
        keys = [k for k in ("round", "threshold", "estimated_precision", "estimated_recall", "recalled",
                            "recalled_tokens", "new_share", "math_domains", "new_positives", "val_roc_auc")
                if any(k in r for r in per_round)]
        lines += ["## Recall rounds", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in per_round:
            lines.append("| " + " | ".join(_fmt(r.get(k)) if not isinstance(r.get(k), float) else f"{r.get(k):.4g}"
                                           for k in keys) + " |")
        lines += ["", f"Stopped: {rounds.get('stop_reason', '-')}. Per-round reports and plots: `rounds/`.", ""]
    domains = rounds.get("math_domains_final") or rounds.get("math_domains")
    if isinstance(domains, list) and domains:
        lines += ["## Math domains found", ""] + [f"- {d if isinstance(d, str) else json.dumps(d)}" for d in domains[:50]] + [""]
    corpus = summaries.get("corpus") or {}
    if corpus:
        lines += ["## Final corpus", "", f"- rows: {_fmt(corpus.get('rows'))}, tokens: {_fmt(corpus.get('tokens'))}, "
                  f"shards: {_fmt(corpus.get('num_shards'))} (`corpus/data/`, manifest `corpus/manifest.json`, "
                  "card `corpus/README.md`)", ""]
    return "\n".join(lines)


def write_run_report(cfg, summaries: dict[str, dict], wall_seconds: float) -> None:
    """Write ``report.md`` + PNGs under the run's output."""
    out = cfg.output
    beam_utils.write_bytes(beam_utils.join(out, "report_funnel.png"), funnel_png(stage_rows(summaries)))
    drops, records = drop_reasons(summaries), skipped_records(summaries)
    if drops or records:
        beam_utils.write_bytes(beam_utils.join(out, "report_drops.png"), drops_png(drops, records))
    beam_utils.write_bytes(beam_utils.join(out, "report.md"), render_report(cfg, summaries, wall_seconds).encode("utf-8"))
