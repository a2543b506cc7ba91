"""The dataset card (``README.md``) written next to the corpus shards."""
from __future__ import annotations

import json
from typing import Any

from pipeline import beam_utils

CARD_HEADER = """---
configs:
- config_name: default
  data_files: "data/*.parquet"
---
"""


def _fmt(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def render_card(manifest: dict, stage_summaries: dict[str, dict], parameters: dict | None = None,
                sources: list[str] | None = None) -> str:
    """Markdown dataset card: sources, stages, parameters, counts per stage, removed by reason, schema."""
    lines = [CARD_HEADER, "# Math web corpus (DeepSeekMath method)", ""]
    lines += [
        "Built by `deepseekmath-corpus`: WARC -> math-preserving text extraction -> URL and MinHash",
        "dedup -> fastText math classifier with recall rounds -> benchmark decontamination -> these shards.",
        "",
        f"- shards: {_fmt(manifest.get('num_shards'))}, rows: {_fmt(manifest.get('rows'))}, "
        f"tokens: {_fmt(manifest.get('tokens'))} (tokenizer: `{manifest.get('tokenizer')}`)",
        "",
        "## Load it",
        "",
        "```python",
        "import pyarrow.dataset as ds",
        "table = ds.dataset('<this folder>/data', format='parquet').to_table()",
        "from datasets import load_dataset",
        "corpus = load_dataset('parquet', data_files='<this folder>/data/*.parquet', split='train')",
        "corpus = load_dataset('<this folder>', split='train')  # the same files, from this card's header",
        "import duckdb",
        "duckdb.sql(\"SELECT count(*) FROM '<this folder>/data/*.parquet'\")",
        "```",
        "",
        "The shards are in `data/`; open that folder, not this one (it also holds this card, the "
        "manifest and `rejects/`).",
        "",
    ]
    if sources:
        lines += ["## Sources", ""] + [f"- `{s}`" for s in sources] + [""]
    if stage_summaries:
        lines += ["## Stages", "", "| stage | in | out | removed by reason |", "|---|---|---|---|"]
        for name, summary in stage_summaries.items():
            removed = summary.get("removed_by_reason") or summary.get("rejected_by_reason") or {}
            reasons = ", ".join(f"{k}: {_fmt(v)}" for k, v in sorted(removed.items())) or "-"
            lines.append(f"| {name} | {_fmt(summary.get('rows_in', summary.get('pages_read', '-')))} | "
                         f"{_fmt(summary.get('rows_out', summary.get('rows', summary.get('pages_kept', '-'))))} | {reasons} |")
        lines.append("")
    if parameters:
        lines += ["## Parameters", "", "```json", json.dumps(parameters, indent=2, sort_keys=True, default=str), "```", ""]
    lines += ["## Columns", "", "| column | type |", "|---|---|"]
    lines += [f"| `{c['name']}` | {c['type']} |" for c in manifest.get("schema", [])]
    lines += ["", "## Shards", "", "| shard | rows | tokens | sha256 |", "|---|---|---|---|"]
    lines += [f"| `{s['path']}` | {_fmt(s['rows'])} | {_fmt(s['tokens'])} | `{s['sha256'][:16]}…` |"
              for s in manifest.get("shards", [])]
    lines += ["", "Licences: the pages remain under the copyright of their sites; see the sources above.", ""]
    return "\n".join(lines)


def write_card(output_dir: str, manifest: dict, stage_summaries: dict[str, dict], parameters: dict | None = None,
               sources: list[str] | None = None) -> None:
    beam_utils.write_bytes(beam_utils.join(output_dir, "README.md"),
                           render_card(manifest, stage_summaries, parameters, sources).encode("utf-8"))
