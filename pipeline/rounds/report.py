"""Per-round and overall reports of the recall rounds: ``report.md`` text and PNG plots.

Everything here reads the round summaries (plain dicts) only, so a report can be rebuilt from
a finished output folder.
"""
from __future__ import annotations

import io

SCORE_BINS = 50


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def score_histogram_png(summary: dict) -> bytes:
    """Pages per classifier-score bin, recalled vs not recalled, with the cut marked."""
    plt = _plt()
    bins = summary["score_histogram"]
    centers = [(int(b) + 0.5) / SCORE_BINS for b in range(SCORE_BINS)]
    pages = [bins.get(str(b), [0, 0, 0, 0])[0] for b in range(SCORE_BINS)]
    recalled = [bins.get(str(b), [0, 0, 0, 0])[1] for b in range(SCORE_BINS)]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    not_recalled = [p - r for p, r in zip(pages, recalled)]
    ax.bar(centers, not_recalled, width=1 / SCORE_BINS, color="#bbbbbb", label="not recalled")
    ax.bar(centers, recalled, width=1 / SCORE_BINS, bottom=not_recalled, color="#4878a8", label="recalled")
    ax.axvline(summary["threshold"], color="#c44e52", ls="--", label=f"cut {summary['threshold']:.4f}")
    if max(pages, default=0) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("math score (fastText probability)")
    ax.set_ylabel("pages")
    ax.set_title(f"Round {summary['round']}: classifier scores of the pool")
    ax.legend(fontsize=8)
    plt.close(fig)
    return _png(fig)


def rounds_png(summaries: list[dict]) -> bytes:
    """Recalled tokens per round (bars) and the share of them that is new (line)."""
    plt = _plt()
    rounds = [s["round"] for s in summaries]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(rounds, [s["recalled_tokens"] for s in summaries], color="#4878a8", label="recalled tokens")
    ax.set_xlabel("round")
    ax.set_ylabel("recalled tokens")
    ax.set_xticks(rounds)
    ax2 = ax.twinx()
    new = [(s["round"], s["new_share"]) for s in summaries if s.get("new_share") is not None]
    if new:
        ax2.plot([r for r, _ in new], [o for _, o in new], "o-", color="#c44e52", label="new share of the tokens")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("share of recalled tokens never recalled before")
    if summaries:
        ax2.axhline(summaries[-1].get("saturation_new_share", 0.02), color="#c44e52", ls=":", lw=1)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower left")
    ax.set_title("Recall per round and saturation")
    plt.close(fig)
    return _png(fig)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "-" if x is None else (f"{x:,.4f}" if isinstance(x, float) else f"{x:,}")


def round_report_md(s: dict, top: int = 20) -> str:
    """The ``report.md`` of one round."""
    v = s.get("validation") or {}
    lines = [
        f"# Recall round {s['round']}",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| pool pages / tokens | {_num(s['pool_pages'])} / {_num(s['pool_tokens'])} |",
        f"| cut | {s.get('cut', 'token_budget')}" + (f" ({_num(s['budget'])} tokens)" if s.get("budget") else "") + " |",
        f"| score threshold | {s['threshold']:.6f} |",
        f"| estimated precision / recall / math share of the pool | {_num(s.get('estimated_precision'))} / "
        f"{_num(s.get('estimated_recall'))} / {_pct(s.get('estimated_math_share'))} |",
        f"| cut evidence: positives ({s.get('positive_evidence') or '-'}) / negatives | "
        f"{_num(s.get('positive_evidence_pages'))} / {_num(s.get('negative_evidence_pages'))} |",
        f"| pages with math markup / markup floor | {_num(s.get('markup_pages'))} / {_num(s.get('markup_floor'))} |",
        f"| renderer floor / pages recalled by it (MathJax/KaTeX loaded, no formula) | "
        f"{_num(s.get('renderer_floor'))} / {_num(s.get('recalled_by_math_renderer'))} |",
        f"| new recalled pages / new share of the tokens (saturation; without the "
        f"{_num(s.get('new_tokens_by_renderer'))} new tokens recalled only for a renderer) | "
        f"{_num(s.get('new_pages'))} / {_pct(s.get('new_share'))} |",
        f"| negatives excluded (clean negatives) | {s.get('negatives_excluded') or 'none'} |",
        f"| recalled pages / tokens | {_num(s['recalled'])} / {_num(s['recalled_tokens'])} |",
        f"| overlap with previous round (tokens / pages) | {_pct(s.get('overlap_with_previous'))} / "
        f"{_pct(s.get('overlap_pages_with_previous'))} |",
        f"| pages recalled last round but not now | {_num(s.get('dropped_since_previous'))} |",
        f"| new positives (missed pages under accepted paths) | {_num(s['new_positives'])} |",
        f"| training positives (seed + discovered) / negatives | {_num(s['train_positives_seed'])} + "
        f"{_num(s['train_positives_discovered'])} / {_num(s['train_negatives'])} |",
        f"| validation precision / recall / ROC-AUC | {_num(v.get('precision'))} / {_num(v.get('recall'))} / "
        f"{_num(v.get('roc_auc'))} |",
        f"| math domains (>= {s.get('domain_min_pages', 1)} pages, Wilson lower bound > {_pct(s['domain_min_share'])}) "
        f"| {_num(s['math_domains'])} |",
        f"| proposed / accepted path prefixes | {_num(s['proposed_paths'])} / {_num(s['accepted_paths'])} |",
        f"| rejected rows | {s.get('rejected_by_reason') or 'none'} |",
        "",
        "![score histogram](score_histogram.png)",
        "",
        "![recall and overlap per round](rounds.png)",
        "",
        f"## Top math domains (of {s['math_domains']}; all in `domains.tsv`)",
        "",
        "| domain | pages | recalled | share | lower bound (evidence) |",
        "|---|---|---|---|---|",
    ]
    for d in s.get("top_math_domains", [])[:top]:
        lines.append(f"| {d['domain']} | {d['pages']:,} | {d['recalled']:,} | {_pct(d['share'])} | "
                     f"{_pct(d.get('share_lower_bound'))} |")
    lines += ["", "## Accepted path prefixes (edit `paths.tsv` to change what the next round uses)", "",
              "| domain | prefix | pages | recalled | missed | lower bound (evidence) |", "|---|---|---|---|---|---|"]
    for p in s.get("top_accepted_paths", [])[:top]:
        lines.append(f"| {p['domain']} | `{p['path_prefix']}` | {p['pages']:,} | {p['recalled']:,} | {p['missed']:,} | "
                     f"{_pct(p.get('share_lower_bound'))} |")
    return "\n".join(lines) + "\n"


def overall_report_md(summary: dict) -> str:
    """The top-level ``report.md``: one row per round, the stop reason and the plot."""
    lines = [
        "# Recall rounds",
        "",
        f"Pool: {summary['pool_rows']:,} pages. Stopped after round {len(summary['rounds'])}: "
        f"{summary['stop_reason']}. Final recalled pages: `recalled/` ({summary['recalled']:,} pages, "
        f"{summary['recalled_tokens']:,} tokens).",
        "",
        "| round | cut | est. precision | est. recall | recalled | recalled tokens | new share | math domains "
        "| accepted paths | new positives | val ROC-AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary["rounds"]:
        lines.append(f"| {s['round']} | {s['threshold']:.6f} | {_num(s.get('estimated_precision'))} | "
                     f"{_num(s.get('estimated_recall'))} | {s['recalled']:,} | {s['recalled_tokens']:,} | "
                     f"{_pct(s.get('new_share'))} | {s['math_domains']:,} | {s['accepted_paths']:,} | "
                     f"{s['new_positives']:,} | {_num(s.get('val_roc_auc'))} |")
    lines += ["", "![recall and overlap per round](rounds.png)", "",
              "Each round's folder holds its `report.md`, `score_histogram.png`, `domains.tsv`, `paths.tsv`, "
              "`model.bin` (+ `model.bin.json`), `recalled/`, `positives/`, `negatives/` and `summary.json`.", ""]
    return "\n".join(lines)
