"""PNG plots of a training run from its ``metrics.jsonl`` (one JSON object per logged step).

``plot_training_curves`` draws the loss (raw and smoothed) and the learning rate against the
step. Any job that writes ``step``, ``loss`` and ``lr`` fields can use it; other numeric fields
can be added as extra panels with ``extra``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file (blank and unparseable lines are ignored)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def ema(values: Sequence[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average with bias correction (so the first values are not pulled to 0)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = alpha * v + (1 - alpha) * avg
        out.append(avg / (1 - (1 - alpha) ** i))
    return out


def plot_training_curves(metrics_path: str | Path, png_path: str | Path, title: str = "",
                         extra: Sequence[str] = ()) -> Path:
    """Write a PNG with loss and learning-rate curves (plus one panel per field in ``extra``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in read_metrics(metrics_path) if "step" in r]
    panels = ["loss", "lr", *extra]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.8 * len(panels)), sharex=True)
    for ax, key in zip(axes, panels):
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, lw=0.8, alpha=0.5 if key == "loss" else 1.0, label=key)
            if key == "loss" and len(values) > 5:
                ax.plot(steps, ema(values), lw=1.5, label="loss (EMA 0.1)")
                ax.legend(loc="upper right")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
