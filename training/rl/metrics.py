"""Run visibility for the policy-gradient jobs: ``metrics.jsonl``, a progress bar, PNG curves, summary.

``MetricsLog`` appends one JSON object per step to ``<output>/metrics.jsonl`` (flushed, so a
crashed run keeps its history) and shows chosen keys in a tqdm bar; ``plot_curves`` draws
reward/accuracy, KL and loss curves from the log as PNGs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

BAR_KEYS = ("reward_mean", "accuracy", "kl", "clip_fraction", "response_length", "tokens_per_s", "nll")


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """Appends step metrics to ``metrics.jsonl`` and drives an optional tqdm progress bar."""

    def __init__(self, output_dir: str | Path, total_steps: int, progress: bool = True, desc: str = "train") -> None:
        self.path = Path(output_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run, closed in close()
        self.rows: list[dict] = []
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, desc=desc, dynamic_ncols=True)

    def log(self, row: dict) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        self.rows.append(row)
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        if self._bar is not None:
            shown = {k: f"{row[k]:.3g}" for k in BAR_KEYS if isinstance(row.get(k), (int, float))}
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._fh.close()


def read_metrics(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _series(rows: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        if isinstance(row.get(key), (int, float)):
            xs.append(row.get("step", len(xs)))
            ys.append(row[key])
    return xs, ys


def plot_curves(rows: Sequence[dict], output_dir: str | Path, panels: dict[str, Sequence[str]]) -> list[str]:
    """One PNG per panel (``{"reward": ["reward_mean", "accuracy"], ...}``) with the listed series; returns paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, keys in panels.items():
        series = {k: _series(rows, k) for k in keys}
        if not any(ys for _, ys in series.values()):
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key, (xs, ys) in series.items():
            if ys:
                ax.plot(xs, ys, label=key, marker="." if len(ys) < 50 else None)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(str(output_dir), f"{name}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
