"""The pre-training loop on a tiny Llama built from a config, with a BPE tokenizer trained here.

Everything runs on the CPU from the bundled seed corpus; nothing is downloaded.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.paths import REPO_ROOT, SEED_DIR
from training.checkpoint import latest_checkpoint, list_checkpoints
from training.config import config_to_dict, load_config
from training.modeling import load_model, tiny_llama_config, train_bpe_tokenizer
from training.plots import read_metrics
from training.pretrain import PretrainConfig, batch_layout, main, next_token_loss_sum, optimizer_groups, run

SEED_FILE = SEED_DIR / "math_seed.jsonl.gz"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    with gzip.open(SEED_FILE, "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(400), fh)]
    path = tmp_path_factory.mktemp("tok")
    train_bpe_tokenizer(texts, vocab_size=384, save_dir=path)
    return path


def tiny_config(output_dir: Path, tokenizer_dir: Path | None, *overrides: str) -> PretrainConfig:
    """A ~40K-parameter Llama on 64-token sequences, 8 sequences per step, one CPU thread."""
    base = {
        "output_dir": str(output_dir),
        "tokenizer": {"path": str(tokenizer_dir) if tokenizer_dir else "", "train_vocab_size": 384,
                      "train_documents": 300},
        "model": {"config": {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
                             "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
                             "tie_word_embeddings": True}},
        "data": {"seq_len": 64, "sources": [{"name": "seed", "path": str(SEED_FILE)}]},
        "optim": {"lr": 1e-2, "warmup_steps": 3},
        "train": {"batch_tokens": 512, "micro_batch_size": 4, "max_steps": 10, "num_threads": 1, "log_every": 1,
                  "checkpoint_every": 0, "progress": False},
    }
    path = output_dir.parent / f"{output_dir.name}.yaml"
    path.write_text(yaml.safe_dump(base), encoding="utf-8")
    return load_config(PretrainConfig, path, list(overrides))


def losses(output_dir: Path) -> list[float]:
    records = read_metrics(output_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, len(records) + 1))
    return [r["loss"] for r in records]


def test_next_token_loss_sum_is_the_summed_cross_entropy():
    # Two positions predict targets 1 and 0 with logits [0, ln 3] -> p(1) = 3/4; [ln 3, 0] -> p(0) = 3/4.
    logits = torch.tensor([[[0.0, math.log(3)], [math.log(3), 0.0], [5.0, 5.0]]])
    ids = torch.tensor([[0, 1, 0]])
    assert next_token_loss_sum(logits, ids).item() == pytest.approx(-2 * math.log(0.75))
    mask = torch.tensor([[True, False]])
    assert next_token_loss_sum(logits, ids, mask).item() == pytest.approx(-math.log(0.75))


def test_next_token_loss_matches_hugging_face_mean_loss(tokenizer_dir):
    from training.modeling import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    model = load_model(tiny_llama_config(len(tok), hidden_size=32, num_heads=2, max_position_embeddings=64),
                       tokenizer=tok, seed=0)
    ids = torch.randint(0, len(tok), (2, 16), generator=torch.Generator().manual_seed(0))
    out = model(input_ids=ids, labels=ids, use_cache=False)
    assert (next_token_loss_sum(out.logits, ids) / (2 * 15)).item() == pytest.approx(out.loss.item(), rel=1e-5)
    groups = optimizer_groups(model, 0.1)
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert all(p.ndim == 1 for p in groups[1]["params"]) and all(p.ndim == 2 for p in groups[0]["params"])


def test_batch_layout_checks_divisibility(tmp_path):
    cfg = tiny_config(tmp_path / "a", None)
    layout = batch_layout(cfg, world_size=2)
    assert (layout.sequences, layout.per_rank, layout.accumulation, layout.total_steps) == (8, 4, 1, 10)
    cfg = tiny_config(tmp_path / "d", None, "--train.micro_batch_size", "3")
    assert (batch_layout(cfg, 1).micro_batch, batch_layout(cfg, 1).accumulation) == (2, 4)  # 2 divides 8
    cfg = tiny_config(tmp_path / "b", None, "--train.batch_tokens", "500")
    with pytest.raises(ValueError, match="multiple of data.seq_len"):
        batch_layout(cfg, 1)
    cfg = tiny_config(tmp_path / "c", None, "--train.max_steps", "0", "--train.total_tokens", "5000")
    assert batch_layout(cfg, 1).total_steps == 10  # ceil(5000 / 512)


def test_loss_falls_and_outputs_are_written(tmp_path):
    """From scratch, with the tokenizer trained from the data by the job itself, via the command line."""
    out = tmp_path / "run"
    cfg = tiny_config(out, None)
    config_file = out.parent / "run.yaml"
    yaml.safe_dump(config_to_dict(cfg), config_file.open("w"))
    summary = main(["--config", str(config_file), "--output-dir", str(out), "--train.max_steps", "60"])
    curve = losses(out)
    assert len(curve) == 60
    assert curve[0] == pytest.approx(math.log(384), abs=0.3)  # a fresh model is near uniform
    assert sum(curve[-5:]) / 5 < curve[0] - 0.8
    assert summary["completed"] and summary["tokens"] == 60 * 512
    assert summary["sources"]["seed"]["tokens"] == 60 * 512
    for name in ("summary.json", "curves.png", "config.yaml", "tokenizer/tokenizer.json", "final/config.json"):
        assert (out / name).is_file(), name
    assert latest_checkpoint(out).name == "step-00000060"
    # The final model is a normal Hugging Face folder, usable for continued pre-training.
    again = run(tiny_config(tmp_path / "continued", None, "--init-from", str(out / "final"), "--train.max_steps",
                            "3"))
    assert again["completed"] and losses(tmp_path / "continued")[0] < curve[0] - 0.6


def test_interrupted_and_resumed_run_reproduces_the_losses(tmp_path, tokenizer_dir):
    common = ("--train.max_steps", "8", "--data.num_streams", "2", "--data.doc_masking", "true",
              "--data.block_lines", "64", "--train.micro_batch_size", "2")
    full = run(tiny_config(tmp_path / "full", tokenizer_dir, *common))
    stopped = run(tiny_config(tmp_path / "cut", tokenizer_dir, *common, "--train.checkpoint_every", "2",
                              "--train.stop_after_steps", "5"))
    assert not stopped["completed"] and stopped["steps"] == 5
    assert [s for s, _ in list_checkpoints(tmp_path / "cut")] == [4, 5]
    with pytest.raises(FileExistsError, match="--resume"):
        run(tiny_config(tmp_path / "cut", tokenizer_dir, *common))
    resumed = run(tiny_config(tmp_path / "cut", tokenizer_dir, *common, "--resume"))
    assert resumed["completed"] and resumed["steps_this_invocation"] == 3
    assert losses(tmp_path / "cut") == losses(tmp_path / "full")  # exactly, step for step
    assert resumed["final_loss"] == full["final_loss"]
    a = load_model(tmp_path / "full" / "final").state_dict()
    b = load_model(tmp_path / "cut" / "final").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


TWO_PROCESS_ARGS = ("--train.max_steps", "4", "--data.num_streams", "2", "--train.micro_batch_size", "2")


def torchrun_two_cpu_processes(out: Path, tokenizer_dir: Path, *overrides: str) -> dict:
    """Run the tiny config under ``torchrun --nproc_per_node 2`` (gloo, one thread each); its summary."""
    cfg = tiny_config(out, tokenizer_dir, *TWO_PROCESS_ARGS, *overrides)
    config_file = out.parent / f"{out.name}-config.yaml"
    yaml.safe_dump(config_to_dict(cfg), config_file.open("w"))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "training.pretrain", "--config", str(config_file)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        _, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish in 300 s: {stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["batch"]["per_rank"] == 4
    return summary


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory, tokenizer_dir) -> tuple[Path, dict]:
    """The reference for the two-process runs: one process, same global batch (8 sequences)."""
    out = tmp_path_factory.mktemp("one-process") / "run"
    return out, run(tiny_config(out, tokenizer_dir, *TWO_PROCESS_ARGS))


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_match_one_process(tmp_path, tokenizer_dir, one_process_run, parallel):
    """torchrun with 2 CPU processes (gloo) gives the losses and final model of 1 process with the same
    global batch, with DDP and with FSDP2 (every decoder layer and the root sharded over the 2 ranks)."""
    single_dir, single = one_process_run
    summary = torchrun_two_cpu_processes(tmp_path / parallel, tokenizer_dir, "--train.parallel", parallel)
    assert yaml.safe_load((tmp_path / parallel / "config.yaml").read_text())["train"]["parallel"] == parallel
    assert losses(tmp_path / parallel) == pytest.approx(losses(single_dir), rel=1e-5)
    assert summary["sources"]["seed"]["tokens"] == single["sources"]["seed"]["tokens"]
    a = load_model(single_dir / "final").state_dict()
    b = load_model(tmp_path / parallel / "final").state_dict()  # FSDP: gathered from both shards
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)
