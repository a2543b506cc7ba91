"""A toy math task for the tiny configs and the tests: small-number addition written as chain of thought.

Question: ``"What is 3 + 5 + 2?"``; response (one step per line, final answer boxed)::

    3 + 5 = 8.
    8 + 2 = 10.
    The answer is \\boxed{10}.

``noise`` is the share of supervised responses whose arithmetic goes wrong at a random line
(the error carries into the boxed answer), so a model fine-tuned on them is right only part of
the time and RL has something to improve. Everything is built locally (data, BPE tokenizer,
model config), so a fresh clone runs the tiny configs without downloads.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from training.rl.data import COT_INSTRUCTION


@dataclass(frozen=True)
class ToyTask:
    """Sizes of the toy task and of the tiny model trained on it."""

    num_questions: int = 400
    max_operand: int = 9
    num_operands: int = 2
    noise: float = 0.5
    seed: int = 0
    vocab_size: int = 400
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4


def solve(operands: list[int], rng: random.Random | None = None, noise: float = 0.0) -> tuple[str, int]:
    """The chain-of-thought response and its final answer; with probability ``noise`` one line is wrong."""
    wrong_line = rng.randrange(len(operands) - 1) if rng is not None and rng.random() < noise else -1
    total = operands[0]
    lines = []
    for k, x in enumerate(operands[1:]):
        result = total + x
        if k == wrong_line:
            result += rng.choice([d for d in range(-3, 4) if d != 0 and result + d >= 0])
        lines.append(f"{total} + {x} = {result}.")
        total = result
    lines.append(f"The answer is \\boxed{{{total}}}.")
    return "\n".join(lines), total


def addition_examples(task: ToyTask, count: int | None = None, seed: int | None = None) -> list[dict]:
    """``count`` rows ``{"question", "answer" (gold), "response" (noisy CoT), "gold"}``."""
    rng = random.Random(task.seed if seed is None else seed)
    rows = []
    for i in range(task.num_questions if count is None else count):
        ops = [rng.randint(0, task.max_operand) for _ in range(task.num_operands)]
        question = "What is " + " + ".join(map(str, ops)) + "?"
        gold = str(sum(ops))
        response, _ = solve(ops, rng, task.noise)
        rows.append({"id": f"toy-{i}", "question": question, "answer": gold, "gold": gold, "response": response})
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)


def build_toy_task(directory: str | Path, task: ToyTask = ToyTask()) -> dict[str, str]:
    """Write the toy data, a BPE tokenizer trained on it, and a tiny Llama config under ``directory``.

    Returns paths: ``questions`` (RL questions, generic ``question``/``answer`` format),
    ``sft`` (``prompt``/``response``/``gold`` pairs; the prompt is the bare question),
    ``eval`` (held-out questions), ``tokenizer`` (folder) and ``model_config`` (JSON).
    """
    from training.modeling import tiny_llama_config, train_bpe_tokenizer

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rows = addition_examples(task)
    held_out = addition_examples(task, count=max(32, task.num_questions // 8), seed=task.seed + 1)
    _write_jsonl(
        out / "questions.jsonl", [{"id": r["id"], "question": r["question"], "answer": r["answer"]} for r in rows]
    )
    _write_jsonl(
        out / "eval.jsonl", [{"id": r["id"], "question": r["question"], "answer": r["answer"]} for r in held_out]
    )
    _write_jsonl(
        out / "sft.jsonl", [{"prompt": r["question"], "response": r["response"], "gold": r["gold"]} for r in rows]
    )
    texts = [f"User: {r['question']}\n{COT_INSTRUCTION}\n\nAssistant: {r['response']}" for r in rows]
    tokenizer = train_bpe_tokenizer(texts * 4, vocab_size=task.vocab_size, save_dir=out / "tokenizer")
    config = tiny_llama_config(
        len(tokenizer),
        hidden_size=task.hidden_size,
        num_layers=task.num_layers,
        num_heads=task.num_heads,
        max_position_embeddings=512,
    )
    config.update(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id
    )
    with open(out / "model_config.json", "w", encoding="utf-8") as fh:
        json.dump(config, fh, indent=1)
    return {
        "questions": str(out / "questions.jsonl"),
        "eval": str(out / "eval.jsonl"),
        "sft": str(out / "sft.jsonl"),
        "tokenizer": str(out / "tokenizer"),
        "model_config": str(out / "model_config.json"),
    }


def toy_task_from_config(toy) -> ToyTask:
    """The ``ToyTask`` described by a ``training.rl.config.ToyConfig``."""
    return ToyTask(
        num_questions=toy.num_questions,
        max_operand=toy.max_operand,
        num_operands=toy.num_operands,
        noise=toy.noise,
        seed=toy.seed,
        vocab_size=toy.vocab_size,
        hidden_size=toy.hidden_size,
        num_layers=toy.num_layers,
    )


def warm_start_policy(toy, directory: str | Path, progress: bool = False, threads: int = 0) -> dict[str, str]:
    """Build the toy task under ``directory`` and fine-tune a fresh tiny model on its (noisy) CoT
    responses with the unified trainer (SFT), so RL starts from a policy that knows the format
    but is right only part of the time. Returns the toy paths plus ``policy`` (checkpoint folder).
    """
    from training.rl.config import ModelConfig, PairDataConfig, SFTJobConfig, SFTOptimConfig
    from training.rl.data import load_pairs
    from training.rl.loop import load_policy, run_offline

    paths = build_toy_task(directory, toy_task_from_config(toy))
    sft = SFTJobConfig(
        model=ModelConfig(config=paths["model_config"], tokenizer=paths["tokenizer"], seed=toy.seed, threads=threads),
        data=PairDataConfig(
            path=paths["sft"],
            instruction=COT_INSTRUCTION if toy.instruction else None,
            max_prompt_tokens=256,
            max_response_tokens=256,
        ),
        optim=SFTOptimConfig(lr=toy.sft_lr),
        steps=toy.sft_steps,
        batch_size=toy.sft_batch_size,
        micro_batch_size=toy.sft_batch_size,
        output_dir=str(Path(directory) / "sft"),
        progress=progress,
    )
    policy, tokenizer, _ = load_policy(sft.model)
    run_offline(sft, policy, tokenizer, load_pairs(paths["sft"]), sft.output_dir)
    paths["policy"] = str(Path(directory) / "sft" / "final")
    return paths
