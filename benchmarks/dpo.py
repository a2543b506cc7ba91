"""DPO loss agreement: ours (``training.rl``) vs TRL's ``DPOTrainer`` on identical inputs, in one run.

    python benchmarks/dpo.py [--pairs 8] [--beta 0.1]

A tiny Llama (built from a config, a BPE tokenizer trained here) is the policy; a perturbed copy
of it is the reference, so the margins are not zero. The same (prompt, chosen, rejected) token
pairs, of ragged lengths, go through both sides: ours through ``completion_logprobs`` ->
``sequence_logprob`` -> ``dpo_loss`` (the path of ``PolicyGradientTrainer.update_preference``),
TRL's through ``DPOTrainer._compute_loss`` with its own collator. Compared for the summed
log-probs (TRL ``sigmoid``, the original DPO) and the length-normalised ones (TRL
``sigmoid_norm``, the paper's appendix A.1.3 form), plus one gradient entry of each. TRL's
column is skipped with a note when ``trl`` is not installed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEXTS = [f"User: What is {a} + {b}?\n\nAssistant: {a} + {b} = {a + b}." for a in range(10) for b in range(10)]


def build(directory: Path, pairs: int):
    """Policy and reference folders plus ``pairs`` random (prompt, chosen, rejected) id lists."""
    import torch

    from training.modeling import load_model, save_model, tiny_llama_config, train_bpe_tokenizer

    tok = train_bpe_tokenizer(TEXTS * 5, vocab_size=300)
    model = load_model(tiny_llama_config(len(tok), hidden_size=64, num_layers=2, num_heads=4), tokenizer=tok, seed=0)
    save_model(model, tok, directory / "policy")
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    save_model(model, tok, directory / "reference")
    g = torch.Generator().manual_seed(2)

    def ids(n):
        return torch.randint(3, len(tok), (n,), generator=g).tolist()

    rows = [
        {"prompt_ids": ids(3 + i % 4), "chosen_ids": ids(2 + (3 * i) % 7), "rejected_ids": ids(2 + (5 * i) % 6)}
        for i in range(pairs)
    ]
    return tok, rows


def ours(model_dir: Path, rows: list[dict], beta: float, length_normalise: bool) -> tuple[float, float]:
    import torch

    from training.modeling import load_model
    from training.rl.logprobs import completion_logprobs
    from training.rl.losses import dpo_loss, sequence_logprob
    from training.rl.rollout import left_pad, right_pad

    policy, ref = load_model(model_dir / "policy"), load_model(model_dir / "reference")
    p_ids, p_mask = left_pad([r["prompt_ids"] for r in rows], 0)
    seqs = {}
    for side in ("chosen", "rejected"):
        c_ids, c_mask = right_pad([r[f"{side}_ids"] for r in rows], 0)
        lp = sequence_logprob(completion_logprobs(policy, p_ids, p_mask, c_ids, c_mask), c_mask, length_normalise)
        with torch.no_grad():
            ref_lp = sequence_logprob(completion_logprobs(ref, p_ids, p_mask, c_ids, c_mask), c_mask, length_normalise)
        seqs[side] = (lp, ref_lp)
    loss = dpo_loss(seqs["chosen"][0], seqs["rejected"][0], seqs["chosen"][1], seqs["rejected"][1], beta)
    loss.backward()
    grad = float(policy.model.embed_tokens.weight.grad.abs().sum())
    return float(loss.detach()), grad


def trl(model_dir: Path, tok, rows: list[dict], beta: float, loss_type: str) -> tuple[float, float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    args = DPOConfig(
        output_dir=tempfile.mkdtemp(),
        beta=beta,
        loss_type=[loss_type],
        per_device_train_batch_size=len(rows),
        report_to=[],
        use_cpu=True,
        precompute_ref_log_probs=False,
        bf16=False,
    )
    data = Dataset.from_list([{"prompt": "What is", "chosen": " 1", "rejected": " 2"}] * 2)
    trainer = DPOTrainer(
        model=str(model_dir / "policy"),
        ref_model=AutoModelForCausalLM.from_pretrained(str(model_dir / "reference")),
        args=args,
        train_dataset=data,
        processing_class=tok,
    )
    inputs = DataCollatorForPreference(pad_token_id=0)(rows)
    trainer.model.train()
    loss = trainer._compute_loss(trainer.model, inputs, return_outputs=False)
    loss = loss[0] if isinstance(loss, tuple) else loss
    loss.backward()
    grad = float(trainer.model.model.embed_tokens.weight.grad.abs().sum())
    return float(loss.detach()), grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--beta", type=float, default=0.1)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    try:
        import trl as _trl

        trl_version = _trl.__version__
    except ImportError:
        trl_version = None
    with tempfile.TemporaryDirectory() as tmp:
        tok, rows = build(Path(tmp), a.pairs)
        print(f"\nDPO loss on identical inputs: {a.pairs} pairs of ragged lengths, beta {a.beta}, tiny Llama, CPU\n")
        print("| log-probs | ours | TRL loss_type | TRL " + (trl_version or "") + " | abs diff | grad L1 ours | grad L1 TRL |")
        print("|---|---|---|---|---|---|---|")
        for normalise, trl_type in ((False, "sigmoid"), (True, "sigmoid_norm")):
            mine, mine_g = ours(Path(tmp), rows, a.beta, normalise)
            if trl_version is None:
                print(f"| {'mean' if normalise else 'sum'} | {mine:.8f} | {trl_type} | n/a (trl not installed) | | "
                      f"{mine_g:.6f} | |")
                continue
            theirs, theirs_g = trl(Path(tmp), tok, rows, a.beta, trl_type)
            print(f"| {'mean (paper A.1.3)' if normalise else 'sum (original DPO)'} | {mine:.8f} | {trl_type} "
                  f"| {theirs:.8f} | {abs(mine - theirs):.1e} | {mine_g:.6f} | {theirs_g:.6f} |")


if __name__ == "__main__":
    main()
