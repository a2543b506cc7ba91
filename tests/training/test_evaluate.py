"""End-to-end evaluation of a tiny model (built from a config, BPE tokenizer trained here) on GSM8K."""
from __future__ import annotations

import gzip
import json

import pytest

from training.config import ConfigError, parse_job_args
from training.eval_benchmarks import (
    BENCHMARKS,
    build_prompt,
    cut_at_stop,
    get_benchmark,
    load_benchmark,
)
from training.evaluate import EvalConfig, main
from training.modeling import load_tokenizer, save_model, tiny_llama_config, train_bpe_tokenizer


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, seed_dir):
    with gzip.open(seed_dir / "math_seed.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(200), fh)]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=400)
    from training.modeling import load_model

    config = tiny_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2,
                               max_position_embeddings=384)
    model = load_model(config, tokenizer=tokenizer, seed=0)
    path = tmp_path_factory.mktemp("tiny_eval_model")
    save_model(model, tokenizer, path)
    return path


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    results = main([
        "--model", str(tiny_model_dir), "--benchmarks", "gsm8k", "--limit", "3", "--samples", "3",
        "--k", "1,2,3,64", "--max-new-tokens", "8", "--batch-size", "6", "--chunk-size", "2",
        "--output-dir", str(out),
    ])
    return out, results


def test_writes_all_three_outputs(run):
    out, _ = run
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(results["benchmarks"]) == {"gsm8k"}
    assert (out / "pass_maj_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "| GSM8K | Pass@K |" in table and "| GSM8K | Maj@K |" in table
    assert "| K=1 | K=2 | K=3 |" in table and "K=64" not in table  # K > n is not reported


def test_results_are_consistent(run):
    _out, results = run
    gsm = results["benchmarks"]["gsm8k"]
    assert gsm["problems"] == 3
    sampled = gsm["sampled"]
    assert set(sampled["pass@k"]) == {"1", "2", "3"}
    passes = [sampled["pass@k"][k] for k in ("1", "2", "3")]
    assert passes == sorted(passes)  # Pass@K never falls with K
    assert sampled["pass@k"]["1"] == pytest.approx(sampled["sample_accuracy"])  # Pass@1 = mean c/n
    assert sampled["maj@k"]["1"] == pytest.approx(sampled["sample_accuracy"])  # one vote = one sample
    assert 0.0 <= gsm["greedy"]["accuracy"] <= 1.0
    assert sampled["sequences"] == 9 and gsm["greedy"]["sequences"] == 3
    # The 8-shot prompt is longer than the 384-token context: cut from the left and counted.
    assert gsm["greedy"]["prompts_truncated"] == 3


def test_predictions_hold_every_sample(run, benchmark_dir):
    out, _ = run
    rows = [json.loads(line) for line in (out / "predictions" / "gsm8k.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    with gzip.open(benchmark_dir / get_benchmark("gsm8k").relative_path, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert rows[0]["gold"] == first["answer"].split("####")[-1].strip()
    for row in rows:
        assert len(row["samples"]) == 3 and len(row["sample_answers"]) == 3
        assert all("\nQ:" not in s for s in row["samples"] + [row["greedy_completion"]])
        assert row["sample_correct"] == sum(v == 0 for v in row["sample_votes"])


def test_rerun_resumes_finished_problems(run, tiny_model_dir):
    out, _ = run
    before = (out / "predictions" / "gsm8k.jsonl").read_text(encoding="utf-8").splitlines()
    again = main([
        "--model", str(tiny_model_dir), "--benchmarks", "gsm8k", "--limit", "4", "--samples", "3",
        "--k", "1,2,3,64", "--max-new-tokens", "8", "--batch-size", "6", "--chunk-size", "2",
        "--output-dir", str(out),
    ])
    gsm = again["benchmarks"]["gsm8k"]
    assert gsm["resumed_problems"] == 3 and gsm["problems"] == 4
    assert gsm["sampled"]["sequences"] == 3 and gsm["greedy"]["sequences"] == 1  # only problem 4 generated
    after = (out / "predictions" / "gsm8k.jsonl").read_text(encoding="utf-8").splitlines()
    assert after[:3] == before and len(after) == 4


def test_cli_arguments_map_to_config():
    cfg = parse_job_args(EvalConfig, ["--model", "m", "--benchmarks", "gsm8k,math,cmath", "--shots", "2",
                                      "--samples", "64", "--k", "1,4,16,64", "--limit", "10",
                                      "--output-dir", "o"])
    assert cfg.benchmarks == ["gsm8k", "math", "cmath"] and cfg.k == [1, 4, 16, 64]
    assert (cfg.shots, cfg.samples, cfg.limit, cfg.output_dir) == (2, 64, 10, "o")
    assert cfg.ks_for(16) == [1, 4, 16]
    with pytest.raises(ConfigError):
        parse_job_args(EvalConfig, ["--model", "m", "--benchmarks", "nosuch"])
    with pytest.raises(ConfigError):
        parse_job_args(EvalConfig, ["--model", "m", "--prompt-style", "weird"])


# ---------------------------------------------------------------- prompts and loaders


def test_paper_few_shot_layouts():
    gsm = build_prompt(get_benchmark("gsm8k"), "How many?")
    assert gsm.count("\nA: ") == 8 and gsm.startswith("Q: There are 15 trees") and gsm.endswith("Q: How many?\nA:")
    math = build_prompt(get_benchmark("math"), "Find $x$.")
    assert math.count("Problem:\n") == 5 and math.endswith("Problem:\nFind $x$.\n\nSolution:")
    assert math.count("Final Answer: The final answer is") == 4
    qa = build_prompt(get_benchmark("gaokao-mathqa"), "题", shots=2)
    assert qa.endswith("问题 3.    题\n问题 3的解析:")
    one = build_prompt(get_benchmark("cmath"), "题", shots=0)
    assert one == "问题：题\n答案："


def test_chat_prompt_uses_the_template(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    prompt = build_prompt(get_benchmark("gsm8k"), "What is 2+3?", style="chat", tokenizer=tokenizer)
    assert prompt == ("User: What is 2+3?\nPlease reason step by step, and put your final answer within "
                      "\\boxed{}.\n\nAssistant:")
    zh = build_prompt(get_benchmark("cmath"), "1+1=?", style="chat", tokenizer=tokenizer)
    assert "\\boxed{}中" in zh


def test_every_bundled_benchmark_loads_with_golds(benchmark_dir):
    expected = {"gsm8k": 1319, "math": 5000, "cmath": 1098, "gaokao_mathqa": 351, "gaokao_mathcloze": 118}
    for name in BENCHMARKS:
        items, skipped = load_benchmark(name, benchmark_dir)
        assert len(items) + sum(skipped.values()) == expected[name]
        assert not skipped
    items, _ = load_benchmark("gaokao_mathqa", benchmark_dir, limit=1)
    assert "从以下选项中选择:    (A)" in items[0].question and items[0].gold == "D"


def test_cut_at_stop():
    assert cut_at_stop(" 3 + 4 = 7. The answer is 7.\nQ: next", ("\nQ:",)) == " 3 + 4 = 7. The answer is 7."
    assert cut_at_stop("no stop", ("\nQ:",)) == "no stop"
