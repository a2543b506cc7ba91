"""The RL analysis command end to end on a very small toy (one warm start, two methods, Pass@K/Maj@K)."""

from __future__ import annotations

import json

import pytest

from training.analysis import AnalysisConfig
from training.analysis import main as analysis_main


def test_analysis_writes_the_table_and_figures_from_one_warm_start(tmp_path):
    base = {
        "toy": {"enabled": True, "num_questions": 48, "max_operand": 3, "sft_steps": 80, "instruction": False},
        "model": {"threads": 1},
        "sampling": {"group_size": 4, "max_new_tokens": 24, "prompts_per_call": 8},
        "batch_size": 16,
        "micro_batch_size": 16,
        "optim": {"lr": 1e-3},
        "iterations": 1,
        "steps_per_iteration": 4,
        "eval_every": 2,
        "data": {"eval_limit": 12},
    }
    code = analysis_main(
        [
            "--output-dir",
            str(tmp_path),
            "--base",
            json.dumps(base),
            "--runs",
            '{"rft": {"method": "rft"}, "grpo": {}}',
            "--figures",
            '{"online_vs_offline": ["rft", "grpo"]}',
            "--seeds",
            "[0]",
            "--pass_k_runs",
            "[grpo]",
            "--pass_k_questions",
            "4",
            "--pass_k_samples",
            "8",
            "--final_samples",
            "4",
            "--final_questions",
            "8",
            "--workers",
            "1",
            "--progress",
            "false",
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["failed"] == [] and set(results["runs"]) == {"rft", "grpo"}
    runs = results["runs"]
    assert runs["rft"]["curve"]["step"] == [0, 2, 4] == runs["grpo"]["curve"]["step"]
    assert runs["rft"]["accuracy_start"] == runs["grpo"]["accuracy_start"]  # the same warm start, greedy
    assert runs["grpo"]["memory_mib"]["reference"] > 0 and "reference" not in runs["rft"]["memory_mib"]
    assert 0.0 <= runs["grpo"]["sampled_accuracy"] <= 1.0 and 0.0 <= results["sampled_accuracy_start"] <= 1.0
    curves = results["pass_maj"]
    assert set(curves) == {"before RL", "after grpo"}
    for c in curves.values():
        assert c["ks"] == list(range(1, 9))
        assert c["pass"][0] == pytest.approx(c["maj"][0], abs=1e-9)  # one sample: the same event
        assert all(b >= a - 1e-12 for a, b in zip(c["pass"], c["pass"][1:]))  # Pass@K grows with K
        assert all(p >= m - 1e-9 for p, m in zip(c["pass"], c["maj"]))  # a right majority needs a right sample
    table = (tmp_path / "table.md").read_text()
    assert "| rft | rft |" in table and "| grpo | grpo |" in table and "Pass@4" in table
    for png in ("online_vs_offline.png", "pass_maj.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_analysis_config_rejects_figures_of_unknown_runs():
    with pytest.raises(ValueError, match="not defined"):
        AnalysisConfig(runs={"grpo": {}}, figures={"f": ["grpo", "ppo"]})
    with pytest.raises(ValueError, match="pass_k_runs"):
        AnalysisConfig(runs={"grpo": {}}, figures={}, pass_k_runs=["dpo"])
