"""GRPO step time, peak memory and loss agreement: ours vs TRL's ``GRPOTrainer``, in one run.

    python benchmarks/grpo.py [--steps 10] [--group-size 8] [--length 64] [--loss-type grpo] [--threads 1]

Both sides train the same tiny Llama (built from a config, saved once, a BPE tokenizer trained
here) on the same prompt, with G samples of exactly ``--length`` tokens (EOS suppressed),
beta 0.04, lr 1e-6, mu = 1, and the same loss type. Each side runs in its own subprocess so its
peak resident memory (``ru_maxrss``) is its own. Then both losses are evaluated on identical
inputs (same model, completions, advantages, reference log-probs) for every loss type and
printed side by side. TRL's column is skipped with a note when ``trl`` is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = "What is 3 + 5?"
TEXTS = [
    f"User: What is {a} + {b}?\n\nAssistant: {a} + {b} = {a + b}.\nThe answer is \\boxed{{{a + b}}}."
    for a in range(10)
    for b in range(10)
]
TRL_LOSS = {"grpo": "grpo", "token": "bnpo", "dr_grpo": "dr_grpo"}


def build_model(directory: Path) -> None:
    """A ~330K-parameter Llama and its tokenizer, saved to ``directory``."""
    import torch

    from training.modeling import load_model, save_model, tiny_llama_config, train_bpe_tokenizer

    tok = train_bpe_tokenizer(TEXTS * 5, vocab_size=512)
    torch.manual_seed(0)
    model = load_model(tiny_llama_config(len(tok), hidden_size=96, num_layers=2, num_heads=4), tokenizer=tok, seed=0)
    save_model(model, tok, directory)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours(model_dir: str, steps: int, group: int, length: int, loss_type: str) -> dict:
    import torch

    from training.rl.config import (
        GRPOJobConfig,
        LossConfig,
        ModelConfig,
        OptimConfig,
        QuestionDataConfig,
        SamplingConfig,
    )
    from training.rl.data import Question
    from training.rl.loop import GRPORunner, load_policy

    cfg = GRPOJobConfig(
        model=ModelConfig(path=model_dir),
        data=QuestionDataConfig(path="-", instruction=None),
        sampling=SamplingConfig(group_size=group, max_new_tokens=length, prompts_per_call=1),
        loss=LossConfig(beta=0.04, loss_type=loss_type),
        optim=OptimConfig(lr=1e-6),
        batch_size=group,
        micro_batch_size=group,
        steps_per_iteration=steps,
        progress=False,
        output_dir=tempfile.mkdtemp(),
    )
    policy, tok, _ = load_policy(cfg.model)
    policy.generation_config.suppress_tokens = [tok.eos_token_id]  # exactly `length` tokens, like TRL below
    runner = GRPORunner(
        cfg, policy, tok, [Question("0", PROMPT, "8")], lambda c, q: [float(len(x) % 3) for x in c], cfg.output_dir
    )
    from training.rl.trainer import freeze_copy

    runner.ref_model = freeze_copy(policy)
    runner._one_step()  # warm-up (not timed)
    times, gen = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        row = runner._one_step()
        times.append(time.perf_counter() - t0)
        gen.append(row["sample_seconds"])
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return {
        "step_s": sum(times) / steps,
        "gen_share": sum(gen) / sum(times),
        "peak_mib": _peak_mib(),
        "response_length": row["response_length"],
    }


def run_trl(model_dir: str, steps: int, group: int, length: int, loss_type: str) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    prompt = f"User: {PROMPT}\n\nAssistant:"
    data = Dataset.from_list([{"prompt": prompt}] * (steps + 1))
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=group,
        num_generations=group,
        max_completion_length=length,
        learning_rate=1e-6,
        beta=0.04,
        loss_type=TRL_LOSS[loss_type],
        max_steps=steps + 1,
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        generation_kwargs={"suppress_tokens": [tok.eos_token_id]},
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model_dir,
        reward_funcs=lambda completions, **kw: [float(len(c) % 3) for c in completions],
        args=args,
        train_dataset=data,
        processing_class=tok,
        callbacks=[Timer()],
    )
    trainer.train()
    timed = times[1:]  # the first step is a warm-up
    return {"step_s": sum(timed) / len(timed), "gen_share": None, "peak_mib": _peak_mib(), "response_length": length}


def loss_agreement(model_dir: str, group: int, length: int) -> list[dict]:
    """Our loss and TRL's ``_compute_loss`` on identical inputs, for each loss type."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.rl.logprobs import completion_logprobs
    from training.rl.losses import policy_gradient_loss

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    torch.manual_seed(0)
    prompt_ids = torch.tensor([tok(f"User: {PROMPT}\n\nAssistant:")["input_ids"]] * group)
    prompt_mask = torch.ones_like(prompt_ids)
    completion_ids = torch.randint(3, len(tok), (group, length))
    completion_mask = torch.ones_like(completion_ids)
    for i in range(group):  # ragged lengths
        completion_mask[i, length - 3 * i :] = 0
    advantages = torch.randn(group)
    with torch.no_grad():
        ref = completion_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask) + 0.05 * torch.randn(
            group, length
        )
    rows = []
    try:
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        GRPOTrainer = None
    for ours_type, trl_type in TRL_LOSS.items():
        lp = completion_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask)
        ours = float(
            policy_gradient_loss(
                lp,
                advantages.unsqueeze(1).expand(-1, length) * completion_mask,
                completion_mask,
                ref_logprobs=ref,
                beta=0.04,
                loss_type=ours_type,
                max_length=length,
            ).loss.detach()
        )
        theirs = None
        if GRPOTrainer is not None:
            args = GRPOConfig(
                output_dir=tempfile.mkdtemp(),
                per_device_train_batch_size=group,
                num_generations=group,
                max_completion_length=length,
                beta=0.04,
                loss_type=trl_type,
                report_to=[],
                use_cpu=True,
            )
            trainer = GRPOTrainer(
                model=model_dir,
                reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                args=args,
                train_dataset=Dataset.from_list([{"prompt": "x"}] * group),
                processing_class=tok,
            )
            inputs = {
                "prompt_ids": prompt_ids,
                "prompt_mask": prompt_mask,
                "completion_ids": completion_ids,
                "completion_mask": completion_mask,
                "advantages": advantages,
                "ref_per_token_logps": ref,
                "old_per_token_logps": None,
                "num_items_in_batch": completion_mask.sum(),
            }
            theirs = float(trainer._compute_loss(trainer.model, inputs).detach())
        rows.append({"loss_type": ours_type, "trl_loss_type": trl_type, "ours": ours, "trl": theirs})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--loss-type", default="grpo", choices=sorted(TRL_LOSS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    if a.worker:
        fn = run_ours if a.worker == "ours" else run_trl
        print("RESULT " + json.dumps(fn(a.model_dir, a.steps, a.group_size, a.length, a.loss_type)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        build_model(model_dir)
        n_params = sum(
            p.numel() for p in __import__("training.modeling", fromlist=["x"]).load_model(model_dir).parameters()
        )
        results = {}
        for side in ("ours", "trl"):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                side,
                "--model-dir",
                str(model_dir),
                "--steps",
                str(a.steps),
                "--group-size",
                str(a.group_size),
                "--length",
                str(a.length),
                "--loss-type",
                a.loss_type,
                "--threads",
                str(a.threads),
            ]
            proc = subprocess.run(
                cmd, capture_output=True, text=True, check=False, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
            )
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            results[side] = json.loads(line[-1][7:]) if line else {"error": (proc.stderr or proc.stdout)[-400:]}
        agreement = loss_agreement(str(model_dir), a.group_size, a.length)
    print(
        f"\nGRPO step: 1 prompt x G={a.group_size} samples of {a.length} tokens, {n_params / 1e3:.0f}K-parameter Llama, "
        f"beta 0.04, mu 1, loss_type {a.loss_type}, {a.steps} timed steps, {a.threads} thread(s), CPU\n"
    )
    print("| implementation | s / step | generation share | peak RSS (MiB) |")
    print("|---|---|---|---|")
    for side, name in (("ours", "ours (training.rl)"), ("trl", "TRL GRPOTrainer")):
        r = results[side]
        if "error" in r:
            print(
                f"| {name} | skipped: {r['error'].strip().splitlines()[-1] if r['error'].strip() else 'failed'} | | |"
            )
            continue
        share = f"{100 * r['gen_share']:.0f}%" if r.get("gen_share") is not None else "n/a"
        print(f"| {name} | {r['step_s']:.3f} | {share} | {r['peak_mib']:.0f} |")
    print("\nLoss on identical inputs (same model, completions, advantages, reference log-probs):\n")
    print("| loss_type (ours) | loss_type (TRL) | loss, ours | loss, TRL | abs diff |")
    print("|---|---|---|---|---|")
    for row in agreement:
        diff = "n/a" if row["trl"] is None else f"{abs(row['ours'] - row['trl']):.2e}"
        trl = "n/a (trl not installed)" if row["trl"] is None else f"{row['trl']:.6f}"
        print(f"| {row['loss_type']} | {row['trl_loss_type']} | {row['ours']:.6f} | {trl} | {diff} |")


if __name__ == "__main__":
    main()
