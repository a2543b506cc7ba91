"""Throughput and peak memory of our pre-training loop vs the Hugging Face ``Trainer``, in one run.

    python benchmarks/pretrain.py [--steps 80] [--threads 2] [--repeats 2] [--device cpu|cuda]

Both contenders train the same model (a ~330K-parameter Llama: hidden 64, 2 layers, vocab 3072
from a byte-level BPE trained here on the bundled seed corpus), built from the same config and
seed, on the same packed sequences (256 tokens, batch 8), with AdamW (0.9, 0.95, wd 0.1), clipping
at 1.0 and fp32 on CPU (bf16 autocast on GPU). Each runs in a fresh subprocess, so peak memory
(max RSS) is per contender; the RSS right after the imports is shown too. Throughput counts the
steps after ``--warmup`` steps: the headline is the tokens/s of the median step (robust to bursts
of other work on a shared machine), the mean over all timed steps is shown too. Contenders
alternate ``--repeats`` times and the best run of each (by median step) is reported.

The ``Trainer`` gets its data pre-tokenised and pre-packed in memory (its preparation is not
timed); our loop streams, tokenises and packs from the gzipped JSONL while it trains, and also
writes metrics.jsonl each step, a checkpoint and the final model (after the timed steps).
On a GPU the table adds MFU: 6 * parameters + 12 * layers * hidden * seq_len FLOPs per token
over the GPU's dense bf16 peak.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEED_FILE = REPO / "data" / "seed" / "math_seed.jsonl.gz"
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_rate(times: list[float], args) -> float:
    """Tokens per second of the median timed step: robust to bursts of other work on the machine."""
    import statistics

    steps = [b - a for a, b in zip(times[args.warmup - 1:], times[args.warmup:])]
    return args.batch * args.seq_len / statistics.median(steps)


def model_spec(args) -> dict:
    return {"model_type": "llama", "hidden_size": args.hidden, "intermediate_size": 4 * args.hidden,
            "num_hidden_layers": args.layers, "num_attention_heads": 4, "num_key_value_heads": 4,
            "max_position_embeddings": args.seq_len, "tie_word_embeddings": True}


def pretrain_config(args, workdir: Path, output: Path):
    import yaml

    from training.config import load_config
    from training.pretrain import PretrainConfig

    data = {
        "output_dir": str(output),
        "tokenizer": {"path": str(workdir / "tokenizer")},
        "model": {"config": model_spec(args)},
        "data": {"seq_len": args.seq_len, "sources": [{"name": "seed", "path": str(SEED_FILE)}]},
        "optim": {"lr": 3e-3, "warmup_steps": 10, "schedule": "multistep"},
        "train": {"batch_tokens": args.batch * args.seq_len, "micro_batch_size": args.batch,
                  "max_steps": args.steps, "num_threads": args.threads, "log_every": 1, "checkpoint_every": 0,
                  "progress": False, "device": args.device},
    }
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(PretrainConfig, path)


def worker_ours(args, workdir: Path) -> dict:
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from training.plots import read_metrics
    from training.pretrain import run

    after_imports = rss_mib()
    output = Path(tempfile.mkdtemp(dir=workdir, prefix="ours-"))
    summary = run(pretrain_config(args, workdir, output))
    records = read_metrics(output / "metrics.jsonl")
    times = [r["elapsed_s"] for r in records]
    t0, t1 = times[args.warmup - 1], times[-1]
    tokens = (len(records) - args.warmup) * args.batch * args.seq_len
    peak_gpu = summary["memory_per_rank"][0].get("peak_gpu_mib_training_loop")
    loop_rss = summary["memory_per_rank"][0]["peak_rss_mib_training_loop"]
    return {"tokens_per_s": tokens / (t1 - t0), "median_step_tokens_per_s": median_rate(times, args),
            "peak_rss_mib": loop_rss, "rss_after_imports_mib": after_imports,
            "peak_rss_with_saving_mib": rss_mib(),
            "peak_gpu_mib": peak_gpu, "parameters": summary["parameters"], "final_loss": summary["final_loss"]}


def worker_trainer(args, workdir: Path) -> dict:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from training.data.loader import DataConfig, RankBatches, SourceConfig, resolve_sources
    from training.modeling import load_model, load_tokenizer

    after_imports = rss_mib()
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(workdir / "tokenizer")
    # The exact sequences our loop trains on, pre-packed in memory.
    sources = resolve_sources([SourceConfig(name="seed", path=str(SEED_FILE))])
    batches = RankBatches(sources, tokenizer, DataConfig(seq_len=args.seq_len, prefetch=0), args.batch)
    rows = []
    for _ in range(args.steps):
        for seq in batches.next_batch().input_ids:
            rows.append({"input_ids": seq, "labels": seq})
    model = load_model(model_spec(args), tokenizer=tokenizer, seed=0)

    class Timer(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())

    timer = Timer()
    targs = TrainingArguments(
        output_dir=str(Path(tempfile.mkdtemp(dir=workdir, prefix="trainer-"))), per_device_train_batch_size=args.batch,
        max_steps=args.steps, learning_rate=3e-3, adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.1,
        warmup_steps=10, lr_scheduler_type="constant_with_warmup", max_grad_norm=1.0, logging_steps=args.steps,
        save_strategy="no", report_to=[], disable_tqdm=True, dataloader_num_workers=0, seed=0,
        use_cpu=args.device == "cpu", bf16=args.device == "cuda",
    )
    Trainer(model=model, args=targs, train_dataset=rows, callbacks=[timer]).train()
    elapsed = timer.times[-1] - timer.times[args.warmup - 1]
    tokens = (len(timer.times) - args.warmup) * args.batch * args.seq_len
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"tokens_per_s": tokens / elapsed, "median_step_tokens_per_s": median_rate(timer.times, args),
            "peak_rss_mib": rss_mib(), "rss_after_imports_mib": after_imports,
            "peak_gpu_mib": peak_gpu, "parameters": sum(p.numel() for p in model.parameters())}


def prepare(args, workdir: Path) -> None:
    from training.modeling import train_bpe_tokenizer

    with gzip.open(SEED_FILE, "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    train_bpe_tokenizer(texts, vocab_size=args.vocab, save_dir=workdir / "tokenizer")


def mfu(result: dict, args) -> float | None:
    import torch

    if args.device != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    if peak is None:
        return None
    flops_per_token = 6 * result["parameters"] + 12 * args.layers * args.hidden * args.seq_len
    return result["tokens_per_s"] * flops_per_token / (peak * 1e12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=3072)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--worker", choices=["ours", "trainer"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    if args.worker:
        fn = worker_ours if args.worker == "ours" else worker_trainer
        print("RESULT " + json.dumps(fn(args, Path(args.workdir))))
        return

    with tempfile.TemporaryDirectory(prefix="bench-pretrain-") as tmp:
        workdir = Path(tmp)
        prepare(args, workdir)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false",
                   PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                       if k not in ("worker", "workdir", "json")]
        results: dict[str, list[dict]] = {"ours": [], "trainer": []}
        for _ in range(args.repeats):
            for name in ("trainer", "ours"):
                proc = subprocess.run([sys.executable, __file__, *passthrough, "--worker", name, "--workdir", tmp],
                                      env=env, capture_output=True, text=True, cwd=REPO, check=False)
                lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                if proc.returncode or not lines:
                    sys.exit(f"{name} failed:\n{proc.stderr[-4000:]}")
                results[name].append(json.loads(lines[-1][len("RESULT "):]))
    best = {name: max(runs, key=lambda r: r["median_step_tokens_per_s"]) for name, runs in results.items()}
    labels = {"ours": "training.pretrain (ours)", "trainer": "transformers.Trainer"}
    print(f"\nmodel: Llama hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}, "
          f"{best['ours']['parameters']:,} parameters; seq {args.seq_len}, batch {args.batch}, "
          f"{args.threads} threads, device {args.device}; {args.steps} steps ({args.warmup} untimed), best of "
          f"{args.repeats}\n")
    header = ("| loop | tokens/s, median step (best run) | tokens/s, mean (each run) | peak RSS MiB "
              "| RSS after imports MiB |")
    extra = " peak GPU MiB | MFU |" if args.device == "cuda" else ""
    print(header + extra)
    print("|" + "---|" * (header.count("|") - 1 + extra.count("|")))
    for name in ("trainer", "ours"):
        r = best[name]
        all_runs = ", ".join(format(x["tokens_per_s"], ",.0f") for x in results[name])
        row = (f"| {labels[name]} | {r['median_step_tokens_per_s']:,.0f} | "
               f"{all_runs} | {r['peak_rss_mib']:,.0f} | "
               f"{r['rss_after_imports_mib']:,.0f} |")
        if args.device == "cuda":
            m = mfu(r, args)
            row += f" {r['peak_gpu_mib'] or 0:,.0f} | {f'{m:.1%}' if m is not None else 'n/a'} |"
        print(row)
    ratio = best["ours"]["median_step_tokens_per_s"] / best["trainer"]["median_step_tokens_per_s"]
    print(f"\nours / Trainer throughput (median step, best run): {ratio:.2f}x")
    print(f"peak RSS is measured at the end of the training steps; ours including the final checkpoint, model "
          f"export and PNG plot: {best['ours']['peak_rss_with_saving_mib']:,.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": results, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
