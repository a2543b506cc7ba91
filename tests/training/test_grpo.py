"""GRPO end to end on a tiny model built from a config and warmed up with SFT in the test (CPU, offline).

The toy task is small-number addition written as two-line chain of thought; the warm-up data
has half of its answers wrong, so the warmed-up policy is right only part of the time and GRPO
has something to improve. The reward is the shared rule-based answer checker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.grpo import main as grpo_main
from training.grpo import run as grpo_run
from training.rl.config import (
    GRPOJobConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    PRMConfig,
    QuestionDataConfig,
    SamplingConfig,
    ToyConfig,
)
from training.rl.data import build_prompt, load_questions
from training.rl.generation import HFSampler, SamplingSettings
from training.rl.rewards import RuleReward

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """The toy task and a tiny Llama fine-tuned on its noisy CoT answers (shared by every test here)."""
    from training.rl.toy import warm_start_policy

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 threads for a model this small on a busy machine
    toy = ToyConfig(
        enabled=True,
        num_questions=64,
        max_operand=3,
        noise=0.5,
        sft_steps=150,
        sft_batch_size=32,
        sft_lr=3e-3,
        instruction=False,
    )
    paths = warm_start_policy(toy, tmp_path_factory.mktemp("toy"), threads=1)
    yield paths
    torch.set_num_threads(threads)


def _cfg(warm, out, **over) -> GRPOJobConfig:
    base = {
        "model": ModelConfig(path=warm["policy"], threads=1),
        "data": QuestionDataConfig(path=warm["questions"], instruction=None),
        "sampling": SamplingConfig(group_size=8, max_new_tokens=24, prompts_per_call=8),
        "optim": OptimConfig(lr=1e-3),
        "loss": LossConfig(beta=0.04),
        "batch_size": 64,
        "micro_batch_size": 64,
        "iterations": 1,
        "steps_per_iteration": 2,
        "output_dir": str(out),
        "progress": False,
    }
    base.update(over)
    return GRPOJobConfig(**base)


def _sampled_reward(model_path: str, questions, seed: int = 123) -> float:
    """Mean reward of 16 samples for each of the questions (fixed seed)."""
    from training.modeling import load_model, load_tokenizer

    tok = load_tokenizer(model_path)
    model = load_model(model_path)
    sampler = HFSampler(tok, SamplingSettings(max_new_tokens=24, prompts_per_call=16))
    torch.manual_seed(seed)
    rollout = sampler.sample(model, [build_prompt(q.question, tok, instruction=None) for q in questions], questions, 16)
    rewards = RuleReward()(rollout.texts, rollout.questions)
    return sum(rewards) / len(rewards)


def test_grpo_raises_the_mean_reward_from_the_command_line(warm, tmp_path):
    questions = list({q.question: q for q in load_questions(warm["questions"])}.values())
    before = _sampled_reward(warm["policy"], questions)
    out = tmp_path / "run"
    code = grpo_main(
        [
            "--config",
            str(REPO / "configs/grpo/tiny.yaml"),
            "--output-dir",
            str(out),
            "--toy.enabled",
            "false",
            "--model.path",
            warm["policy"],
            "--data.path",
            warm["questions"],
            "--data.eval_path",
            warm["eval"],
            "--data.instruction",
            "null",
            "--data.eval_limit",
            "16",
            "--sampling.max_new_tokens",
            "24",
            "--iterations",
            "1",
            "--steps_per_iteration",
            "20",
            "--eval_every",
            "0",
            "--progress",
            "false",
        ]
    )
    assert code == 0
    after = _sampled_reward(str(out / "final"), questions)
    # measured: about 0.45 -> 0.8; the warm-up policy is right about half the time
    assert after >= before + 0.15, (before, after)
    rows = [json.loads(line) for line in Path(out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward_mean" in r]
    assert len(steps) == 20
    for key in ("reward_mean", "reward_std", "accuracy", "kl", "clip_fraction", "response_length", "tokens_per_s"):
        assert all(isinstance(r[key], float) for r in steps), key
    assert sum(r["reward_mean"] for r in steps[-5:]) > sum(r["reward_mean"] for r in steps[:5])
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # reference == policy before the first update
    assert max(r["kl"] for r in steps) > 0
    for png in ("reward.png", "kl.png"):
        assert (out / png).stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["reference_resets"] == 1 and summary["questions"] == 64


def test_reference_is_reset_to_the_policy_at_each_iteration(warm, tmp_path):
    seen = []

    def on_event(event, runner):
        if event == "iteration_start":
            ref = dict(runner.ref_model.named_parameters())
            pol = dict(runner.policy.named_parameters())
            same = all(torch.equal(ref[k], pol[k]) for k in pol)
            frozen = not any(p.requires_grad for p in ref.values())
            seen.append(
                (
                    runner.iteration,
                    runner.ref_model,  # kept alive, so id() below cannot be reused by a freed model
                    same,
                    frozen,
                    {k: v.detach().clone() for k, v in list(ref.items())[:3]},
                )
            )

    summary = grpo_run(
        _cfg(
            warm,
            tmp_path,
            iterations=3,
            steps_per_iteration=1,
            sampling=SamplingConfig(group_size=4, max_new_tokens=16),
            batch_size=16,
        ),
        callbacks=[on_event],
    )
    assert [s[0] for s in seen] == [0, 1, 2] and summary["reference_resets"] == 3
    assert all(s[2] and s[3] for s in seen)  # each new reference equals the current policy and is frozen
    assert len({id(s[1]) for s in seen}) == 3
    first, second = seen[0][4], seen[1][4]
    assert any(not torch.equal(first[k], second[k]) for k in first)  # the policy moved, the reference followed


def test_process_supervision_runs_end_to_end_with_a_tiny_prm(warm, tmp_path):
    cfg = _cfg(
        warm,
        tmp_path,
        supervision="process",
        iterations=2,
        steps_per_iteration=2,
        prm=PRMConfig(
            lr=1e-3, initial_questions=8, initial_epochs=4, batch_size=32, micro_batch_size=32, replay_fraction=0.1
        ),
    )
    summary = grpo_run(cfg)
    rows = [json.loads(line) for line in Path(tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward_mean" in r]
    assert len(steps) == 4
    assert all(0.0 <= r["step_reward_mean"] <= 1.0 for r in steps)
    assert all(r["steps_per_response"] >= 1.5 for r in steps)  # "a + b = c." and "The answer is ..."
    updates = summary["prm_updates"]
    # before RL (8 questions x 8 samples) and after iteration 1 (2 steps x 8 questions x 8 samples)
    assert [u["iteration"] for u in updates] == [0, 0]
    assert updates[0]["prm_fresh"] == 64 and updates[0]["prm_replayed"] == 0
    assert updates[1]["prm_fresh"] == 128 and updates[1]["prm_replayed"] == round(0.1 * 64)
    assert updates[0]["prm_loss_last_epoch"] < updates[0]["prm_loss_first_epoch"]  # the PRM learns
    assert (tmp_path / "final" / "prm" / "config.json").exists()


def test_online_rft_runs_through_the_same_trainer(warm, tmp_path):
    summary = grpo_run(_cfg(warm, tmp_path, method="online_rft", steps_per_iteration=2))
    rows = [json.loads(line) for line in Path(tmp_path / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["rows_trained"] == round(r["accuracy"] * 64)  # trained on the correct samples only
        assert r["kl"] == 0.0
    assert summary["reference_resets"] == 0


def _rows(out):
    return [json.loads(line) for line in Path(out / "metrics.jsonl").read_text().splitlines()]


def test_ppo_runs_from_the_cli_with_a_value_model_and_kl_in_the_reward(warm, tmp_path):
    code = grpo_main(
        [
            "--config",
            str(REPO / "configs/grpo/ppo_tiny.yaml"),
            "--output-dir",
            str(tmp_path),
            "--toy.enabled",
            "false",
            "--model.path",
            warm["policy"],
            "--data.path",
            warm["questions"],
            "--data.instruction",
            "null",
            "--sampling.max_new_tokens",
            "24",
            "--iterations",
            "1",
            "--steps_per_iteration",
            "3",
            "--eval_every",
            "0",
            "--progress",
            "false",
        ]
    )
    assert code == 0
    steps = [r for r in _rows(tmp_path) if "reward_mean" in r]
    assert len(steps) == 3
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-6) and steps[-1]["kl"] > 0  # reference == policy at first
    assert steps[0]["value_mean"] == 0.0  # zero-initialised head
    assert all(r["value_loss"] > 0 and r["rows_trained"] == 64 for r in steps)
    assert steps[-1]["value_mean"] != 0.0  # the critic learned
    memory = json.loads((tmp_path / "summary.json").read_text())["memory_mib"]
    # the value model costs as much as the policy (same body, its own Adam state): why GRPO drops it
    assert memory["value_model"] == pytest.approx(memory["policy"], rel=0.05)


def test_dpo_trains_on_pairs_of_the_initial_policys_own_samples(warm, tmp_path):
    summary = grpo_run(_cfg(warm, tmp_path, method="dpo", iterations=2, steps_per_iteration=2, offline_questions=16))
    rows = _rows(tmp_path)
    pool = next(r for r in rows if "offline_groups" in r)
    assert pool["offline_groups"] == 16 and pool["offline_pairs"] > 0  # sampled once, before training
    steps = [r for r in rows if "dpo_margin" in r]
    assert len(steps) == 4 and all(r["pairs"] == 32 for r in steps)
    # policy == reference at the first update: margin 0, GC = sigmoid(0) = 1/2, loss log 2
    assert steps[0]["dpo_margin"] == pytest.approx(0.0, abs=1e-5)
    assert steps[0]["dpo_gc"] == pytest.approx(0.5, abs=1e-5)
    assert steps[0]["loss"] == pytest.approx(0.693147, abs=1e-4)
    assert steps[-1]["dpo_margin"] > 0 and steps[-1]["dpo_gc"] < 0.5  # right answers pulled above wrong ones
    assert all(r["reward_mean"] == 0.5 for r in steps)  # half chosen (right), half rejected (wrong)
    assert summary["reference_resets"] == 1  # the reference stays the initial policy across iterations


def test_offline_rft_trains_on_the_fixed_pool_only(warm, tmp_path):
    grpo_run(_cfg(warm, tmp_path, method="rft", steps_per_iteration=3))
    rows = _rows(tmp_path)
    pool = next(r for r in rows if "offline_groups" in r)
    assert pool["offline_groups"] == 3 * 8  # as many questions as the online methods would see
    for r in (r for r in rows if "reward_mean" in r):
        assert r["sample_seconds"] == 0.0 and r["kl"] == 0.0  # no sampling after the pool: offline
        assert r["rows_trained"] == round(r["accuracy"] * 64)


def test_mu_above_one_uses_fixed_old_log_probs_and_clips(warm, tmp_path):
    grpo_run(_cfg(warm, tmp_path, mu=4, steps_per_iteration=1, optim=OptimConfig(lr=1e-2)))
    row = json.loads(Path(tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert row["clip_fraction"] > 0  # later updates move the ratio out of [0.8, 1.2] for some tokens


def test_bad_config_is_rejected():
    with pytest.raises(ValueError):
        GRPOJobConfig(data=QuestionDataConfig(path="x"), model=ModelConfig(path="m"), batch_size=100)
    with pytest.raises(ValueError):
        LossConfig(loss_type="mean")
    with pytest.raises(ValueError, match="unknown method"):
        GRPOJobConfig(method="reinforce", data=QuestionDataConfig(path="x"), model=ModelConfig(path="m"))
    with pytest.raises(ValueError, match="process"):
        GRPOJobConfig(method="ppo", supervision="process", data=QuestionDataConfig(path="x"), model=ModelConfig(path="m"))
