"""SFT and offline RFT through the unified trainer, on a tiny model built from a config (CPU, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.modeling import load_model, load_tokenizer
from training.rl.config import ModelConfig, PairDataConfig, SFTJobConfig, SFTOptimConfig
from training.rl.data import PromptResponse, build_prompt, load_pairs
from training.rl.logprobs import position_ids_from_mask
from training.rl.loop import load_policy, run_offline
from training.rl.rollout import encode_pairs
from training.sft import main as sft_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from training.rl.toy import ToyTask, build_toy_task

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_toy_task(tmp_path_factory.mktemp("sfttoy"), ToyTask(num_questions=200, max_operand=4, noise=0.0))
    torch.set_num_threads(threads)


def _token_nll(model, rollout) -> tuple[float, float]:
    """Mean next-token NLL on the prompt tokens and on the response tokens, from one full forward pass."""
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)
    attn = torch.cat([rollout.prompt_mask, rollout.completion_mask], 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attn, position_ids=position_ids_from_mask(attn)).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    target_real = attn[:, 1:].bool()
    is_response = torch.zeros_like(target_real)
    is_response[:, rollout.prompt_ids.shape[1] - 1 :] = True
    prompt_part = target_real & ~is_response & attn[:, :-1].bool()
    response_part = target_real & is_response
    return float(nll[prompt_part].mean()), float(nll[response_part].mean())


def test_sft_lowers_the_response_loss_and_never_learns_the_prompt(toy, tmp_path):
    cfg = SFTJobConfig(
        model=ModelConfig(config=toy["model_config"], tokenizer=toy["tokenizer"], threads=1),
        data=PairDataConfig(path=toy["sft"]),
        optim=SFTOptimConfig(lr=3e-3),
        steps=60,
        batch_size=32,
        micro_batch_size=16,
        output_dir=str(tmp_path),
        progress=False,
    )
    policy, tok, _ = load_policy(cfg.model)
    pairs = load_pairs(toy["sft"])[:64]
    probe = encode_pairs(tok, pairs, [build_prompt(p.prompt, tok) for p in pairs], 256, 256)
    prompt_before, response_before = _token_nll(policy, probe)
    summary = run_offline(cfg, policy, tok, load_pairs(toy["sft"]), tmp_path)
    prompt_after, response_after = _token_nll(policy, probe)
    assert response_after < 0.3 * response_before  # the responses are learnt
    # The prompts ("User: What is a + b?\n...Assistant:") are just as regular, but never a target:
    # their loss must not fall the way the responses' does.
    assert prompt_after > 0.6 * prompt_before, (prompt_before, prompt_after)
    assert summary["nll_last"] < 0.3 * summary["nll_first"]
    rows = [json.loads(line) for line in Path(tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and (tmp_path / "loss.png").exists() and (tmp_path / "final" / "config.json").exists()


def test_sft_cli_with_the_tiny_config(tmp_path):
    code = sft_main(
        [
            "--config",
            str(REPO / "configs/sft/tiny.yaml"),
            "--output-dir",
            str(tmp_path),
            "--steps",
            "8",
            "--toy.num_questions",
            "64",
            "--progress",
            "false",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["pairs"] == 64 and summary["nll_last"] < summary["nll_first"]
    model = load_model(tmp_path / "final")
    assert load_tokenizer(tmp_path / "final").eos_token_id == model.config.eos_token_id


def test_offline_rft_trains_only_on_correct_samples(toy, tmp_path):
    # offline samples of an "SFT model": the toy's right answers plus the same questions answered wrongly
    right = load_pairs(toy["sft"])[:24]
    wrong = [
        PromptResponse(p.prompt, p.response.replace(f"{{{p.gold}}}", f"{{{int(p.gold) + 1}}}"), p.gold)
        for p in right[:8]
    ]
    data = tmp_path / "samples.jsonl"
    with open(data, "w") as fh:
        fh.writelines(
            json.dumps({"prompt": p.prompt, "response": p.response, "gold": p.gold}) + "\n" for p in right + wrong
        )
    events = []
    cfg = SFTJobConfig(
        method="rft",
        model=ModelConfig(config=toy["model_config"], tokenizer=toy["tokenizer"], threads=1),
        data=PairDataConfig(path=str(data)),
        optim=SFTOptimConfig(lr=1e-3),
        steps=2,
        batch_size=32,
        micro_batch_size=32,
        output_dir=str(tmp_path / "out"),
        progress=False,
    )
    policy, tok, _ = load_policy(cfg.model)
    from training.rl.rewards import RuleReward

    run_offline(
        cfg,
        policy,
        tok,
        load_pairs(str(data)),
        cfg.output_dir,
        RuleReward(),
        callbacks=[lambda event, info: events.append(info["stats"])],
    )
    assert [e["rows"] for e in events] == [32.0, 32.0]
    assert [e["rows_trained"] for e in events] == [24.0, 24.0]
    rows = [json.loads(line) for line in Path(tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["accuracy"] == pytest.approx(24 / 32)
