"""GRPO training job: ``python -m training.grpo --config configs/grpo/NAME.yaml [--output-dir DIR] [--key value ...]``.

Runs the paper's iterative GRPO (outcome or process supervision) or online RFT on questions with
gold answers, and writes under the output directory: ``config.json``, ``metrics.jsonl`` (one row
per step: reward mean/std, accuracy, KL, clip fraction, response length, tokens/s, ...),
``reward.png``/``kl.png``/``loss.png``, ``checkpoints/step_N`` (every ``save_every`` steps),
``final/`` (policy and, with process supervision, ``final/prm``) and ``summary.json`` (counts,
skipped rows by reason, PRM updates). See ``docs/grpo.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from training.config import config_to_dict, parse_job_args
from training.rl.config import GRPOJobConfig
from training.rl.data import SkipCounter, build_prompt, load_questions, read_records
from training.rl.loop import GRPORunner, load_policy
from training.rl.prm import ProcessRewardModel, add_step_ends, examples_from_rollout, examples_from_rows
from training.rl.rewards import load_reward


def _prepare_toy(cfg: GRPOJobConfig, out: Path) -> None:
    from training.rl.toy import warm_start_policy

    paths = warm_start_policy(cfg.toy, out / "toy", progress=cfg.progress, threads=cfg.model.threads)
    cfg.model.path = cfg.model.path or paths["policy"]
    cfg.data.path = cfg.data.path or paths["questions"]
    cfg.data.eval_path = cfg.data.eval_path or paths["eval"]
    if not cfg.toy.instruction:
        cfg.data.instruction = None  # prompt exactly as in the warm-up


def _questions(cfg: GRPOJobConfig, tokenizer, path: str, limit: int | None, skips: SkipCounter):
    d = cfg.data
    questions = load_questions(path, d.format, limit, d.benchmark, skips, d.question_field, d.answer_field)
    kept = []
    for q in questions:
        prompt = build_prompt(q.question, tokenizer, d.use_chat_template, d.instruction)
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) > d.max_prompt_tokens:
            skips["prompt_too_long"] += 1
        else:
            kept.append(q)
    return kept


def _make_prm(cfg: GRPOJobConfig, policy, tokenizer) -> ProcessRewardModel:
    pad = tokenizer.pad_token_id
    if cfg.prm.path:
        return ProcessRewardModel.from_pretrained(cfg.prm.path, pad)
    return ProcessRewardModel.from_policy(policy, pad, seed=cfg.seed)


def _initial_prm_training(runner: GRPORunner, cfg: GRPOJobConfig, questions) -> dict | None:
    """Before RL: train the PRM on step-labelled data and on outcome-labelled samples of the initial policy."""
    examples = []
    if cfg.prm.train_data:
        prompt_fn = runner.prompt
        examples.extend(examples_from_rows(runner.tokenizer, read_records(cfg.prm.train_data), prompt_fn))
    if cfg.prm.initial_questions > 0:
        take = runner.questions.take(min(cfg.prm.initial_questions, len(questions)))
        for lo in range(0, len(take), max(cfg.questions_per_step, 1)):
            rollout = runner.sampler.sample(
                runner.policy,
                [runner.prompt(q.question) for q in take[lo : lo + cfg.questions_per_step]],
                take[lo : lo + cfg.questions_per_step],
                cfg.sampling.group_size,
            )
            rollout.rewards = torch.tensor(runner.reward_fn(rollout.texts, rollout.questions))
            rollout.correct = rollout.rewards > 0.5
            add_step_ends(rollout, runner.tokenizer, runner.token_text)
            examples.extend(examples_from_rollout(rollout))
    if not examples:
        return None
    return runner.train_prm(examples, cfg.prm.initial_epochs)


def run(cfg: GRPOJobConfig, callbacks: Sequence[Callable] = ()) -> dict:
    """Run the GRPO job described by ``cfg``; returns the summary (also written to summary.json)."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.toy.enabled:
        _prepare_toy(cfg, out)
    with open(out / "config.json", "w", encoding="utf-8") as fh:
        json.dump(config_to_dict(cfg), fh, indent=1)
    policy, tokenizer, _ = load_policy(cfg.model)
    skips = SkipCounter()
    questions = _questions(cfg, tokenizer, cfg.data.path, cfg.data.limit, skips)
    if not questions:
        raise ValueError(f"no usable question in {cfg.data.path}: skipped {skips.summary()}")
    eval_questions = (
        _questions(cfg, tokenizer, cfg.data.eval_path, cfg.data.eval_limit, SkipCounter()) if cfg.data.eval_path else []
    )
    reward_fn = load_reward(cfg.reward, cfg.reward_workers)
    prm = _make_prm(cfg, policy, tokenizer) if cfg.method == "grpo" and cfg.supervision == "process" else None
    runner = GRPORunner(
        cfg, policy, tokenizer, questions, reward_fn, out, prm=prm, eval_questions=eval_questions, callbacks=callbacks
    )
    initial_prm = _initial_prm_training(runner, cfg, questions) if prm is not None else None
    try:
        summary = runner.run()
    finally:
        close = getattr(reward_fn, "close", None)
        if close:
            close()
    summary.update(questions=len(questions), skipped_rows=skips.summary(), initial_prm=initial_prm)
    with open(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_job_args(GRPOJobConfig, argv, __doc__)
    summary = run(cfg)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in ("steps", "reward_first", "reward_last", "eval_accuracy", "reference_resets", "skipped_rows")
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
