"""Instruction tuning job: ``python -m training.sft --config configs/sft/NAME.yaml [--output-dir DIR] [--key value ...]``.

Supervised fine-tuning on (prompt, response) pairs from JSONL/Parquet (or chat ``messages``
rows), with the loss on the response tokens only (prompt tokens are context, never targets).
Paper defaults (DeepSeekMath-Instruct, section 3): 500 steps, batch 256, constant lr 5e-5.
``method: rft`` runs offline rejection-sampling fine-tuning instead: the same pairs (samples of
an SFT model) with a gold answer each, trained on the correct ones only. Both go through the
unified policy-gradient trainer of ``training.rl`` (gradient coefficient 1, or 1 if correct).

Writes ``config.json``, ``metrics.jsonl`` (response NLL, tokens/s, ...), ``loss.png``,
``checkpoints/step_N``, ``final/`` and ``summary.json`` (NLL first/last, skipped rows by reason).
See ``docs/sft.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from training.config import config_to_dict, parse_job_args
from training.rl.config import SFTJobConfig
from training.rl.data import SkipCounter, load_pairs
from training.rl.loop import load_policy, run_offline
from training.rl.rewards import load_reward


def run(cfg: SFTJobConfig, callbacks: Sequence[Callable] = ()) -> dict:
    """Run the SFT/RFT job described by ``cfg``; returns the summary (also written to summary.json)."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.toy.enabled:
        from training.rl.data import COT_INSTRUCTION
        from training.rl.toy import build_toy_task, toy_task_from_config

        paths = build_toy_task(out / "toy", toy_task_from_config(cfg.toy))
        if not (cfg.model.path or cfg.model.config):
            cfg.model.config, cfg.model.tokenizer = paths["model_config"], paths["tokenizer"]
        if not cfg.data.path:
            cfg.data.path = paths["sft"]
            cfg.data.instruction = cfg.data.instruction or COT_INSTRUCTION
    with open(out / "config.json", "w", encoding="utf-8") as fh:
        json.dump(config_to_dict(cfg), fh, indent=1)
    policy, tokenizer, _ = load_policy(cfg.model)
    skips = SkipCounter()
    d = cfg.data
    pairs = load_pairs(d.path, d.prompt_field, d.response_field, d.gold_field, d.benchmark, d.limit, skips)
    if not pairs:
        raise ValueError(f"no usable (prompt, response) pair in {d.path}: skipped {skips.summary()}")
    reward_fn = load_reward(cfg.reward) if cfg.method == "rft" else None
    return run_offline(cfg, policy, tokenizer, pairs, out, reward_fn, skips, callbacks)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_job_args(SFTJobConfig, argv, __doc__)
    summary = run(cfg)
    print(json.dumps({k: summary[k] for k in ("steps", "pairs", "nll_first", "nll_last", "skipped_rows")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
