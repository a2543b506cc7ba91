r"""Evaluate a causal LM on the math benchmarks: greedy top-1 accuracy, Pass@K and Maj@K.

    python -m training.evaluate --model PATH --benchmarks gsm8k,math,cmath \
        [--shots N] [--samples N] [--k 1,4,16,64] [--limit N] [--output-dir DIR] [--key value ...]

Method, as the paper (DeepSeekMath sections 2.3, 3 and 5.2.2):

- prompts: few-shot chain of thought for base models (GSM8K 8-shot "Q:/A:", MATH 4-shot
  Minerva, CMATH 6-shot, Gaokao 5-shot; ``training.eval_benchmarks``), or zero-shot through
  the chat template with "Please reason step by step, and put your final answer within
  \boxed{}." (``--prompt_style chat``) for instruction-tuned models;
- decoding: greedy for the top-1 accuracy (the paper's tables); ``--samples n`` draws n
  samples per problem (temperature 0.7 by default) from which Pass@K and Maj@K are computed for
  every K <= n in ``--k`` (the paper's figure 7 uses n = 64, K = 1..64). Batched
  ``model.generate`` with the KV cache, stopping at the next exemplar header;
- scoring: ``training.answers`` (the same checker as the GRPO rewards); Pass@K with the
  unbiased estimator and Maj@K with votes over clusters of equivalent answers
  (``training.metrics``; ties split, documented there).

Outputs in ``--output-dir``: ``results.json`` (config, per-benchmark metrics, skip counts,
timings), ``results.md`` (tables like the paper's), ``pass_maj_at_k.png`` (Pass@K and Maj@K
against K, one panel per benchmark) and ``predictions/<benchmark>.jsonl`` (every completion,
its extracted answer and verdict, and the problem's Pass@K / Maj@K, for error analysis),
written ``--chunk_size`` problems at a time; a rerun with the same settings
(``predictions/<benchmark>.settings.json``) resumes after the last finished problem.

Departures from the paper: the paper's harness samples with vLLM; here ``transformers.generate``
(a vLLM backend is not included). Prompts longer than the model's context minus
``max_new_tokens`` are cut from the left (oldest exemplar text first) and counted
(``prompts_truncated``), rather than failing. Sampling temperature 0.7 and top-p 1.0 are our
defaults (the paper does not state them for its Maj@K figure).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.answers import answers_equal, check_stats, extract_answer, normalize_answer
from training.config import ConfigError, config_to_dict, parse_job_args
from training.eval_benchmarks import (
    BenchmarkSpec,
    EvalItem,
    build_prompt,
    cut_at_stop,
    get_benchmark,
    load_benchmark,
    stop_strings,
)
from training.metrics import cluster_answers, maj_at_k, majority_answer, pass_at_k

DISPLAY_NAMES = {"gsm8k": "GSM8K", "math": "MATH", "cmath": "CMATH", "gaokao_mathqa": "Gaokao MathQA",
                 "gaokao_mathcloze": "Gaokao MathCloze"}


@dataclass
class EvalConfig:
    """Options of ``python -m training.evaluate`` (``--key value``; lists as ``a,b,c``)."""

    model: str = ""  # a local Hugging Face checkpoint folder
    tokenizer: str = ""  # default: the model folder
    benchmarks: list[str] = field(default_factory=lambda: ["gsm8k", "math"])
    prompt_style: str = "few_shot"  # few_shot | chat
    shots: int | None = None  # None: the benchmark's standard number (8 GSM8K, 4 MATH, 6 CMATH, 5 Gaokao)
    greedy: bool = True  # run greedy decoding (top-1 accuracy)
    samples: int = 1  # n samples per problem for Pass@K / Maj@K (1: none, greedy only)
    k: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 16  # sequences per generate call
    limit: int | None = None  # first N problems of each benchmark
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | float32 | bfloat16 | float16
    benchmark_dir: str = ""  # default: the bundled data/benchmarks
    output_dir: str = "outputs/eval"
    check_workers: int = 0  # processes for answer checking (0: in this process)
    maj_max_exact_subsets: int = 5000
    maj_num_subsets: int = 2000
    chunk_size: int = 256  # problems generated, scored and written together (bounds memory)
    resume: bool = True  # reuse finished problems of an earlier run with the same settings

    def __post_init__(self) -> None:
        if self.prompt_style not in ("few_shot", "chat"):
            raise ConfigError(f"prompt_style must be few_shot or chat, got {self.prompt_style!r}")
        if self.samples < 1:
            raise ConfigError("samples must be >= 1")
        if not self.greedy and self.samples < 2:
            raise ConfigError("nothing to do: greedy is off and samples < 2")
        if any(k < 1 for k in self.k):
            raise ConfigError(f"every K must be >= 1, got {self.k}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.chunk_size < 1:
            raise ConfigError("batch_size, max_new_tokens and chunk_size must be >= 1")
        for name in self.benchmarks:
            try:
                get_benchmark(name)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc

    def ks_for(self, n: int) -> list[int]:
        """The K values that n samples support (K <= n), sorted and unique."""
        return sorted({k for k in self.k if k <= n})


# --------------------------------------------------------------------------------------------
# Scoring (pure, picklable: runs in worker processes too)
# --------------------------------------------------------------------------------------------


def score_samples(answers: Sequence[str | None], gold: str, ks: Sequence[int], seed: int = 0,
                  max_exact_subsets: int = 5000, num_subsets: int = 2000) -> dict:
    """Pass@K and Maj@K of one problem from its n extracted answers.

    Correct answers (``answers_equal(answer, gold)``) form vote cluster 0; the wrong ones are
    clustered among themselves by equivalence. Returns ``{"correct": c, "n": n, "pass@K": ..,
    "maj@K": .., "votes": [...], "majority": answer}``.
    """
    verdict_by_key: dict[str, bool] = {}
    correct: list[bool] = []
    for answer in answers:
        if answer is None:
            correct.append(False)
            continue
        key = normalize_answer(answer)
        if key not in verdict_by_key:
            verdict_by_key[key] = answers_equal(answer, gold)
        correct.append(verdict_by_key[key])
    wrong = [a if (a is not None and not ok) else None for a, ok in zip(answers, correct)]
    wrong_clusters = cluster_answers(wrong, answers_equal, key=normalize_answer)
    votes: list[int | None] = [0 if ok else (None if cid is None else cid + 1)
                               for ok, cid in zip(correct, wrong_clusters)]
    n, c = len(answers), sum(correct)
    out: dict = {"n": n, "correct": c, "votes": votes, "majority": majority_answer(list(answers), votes)}
    for k in ks:
        out[f"pass@{k}"] = pass_at_k(n, c, k)
        out[f"maj@{k}"] = maj_at_k(votes, {0}, k, max_exact_subsets=max_exact_subsets,
                                   num_subsets=num_subsets, seed=seed)
    return out


def _score_task(args: tuple) -> dict:
    completions, gold, benchmark, ks, seed, max_exact, num_subsets = args
    answers = [extract_answer(c, benchmark) for c in completions]
    result = score_samples(answers, gold, ks, seed=seed, max_exact_subsets=max_exact, num_subsets=num_subsets)
    result["answers"] = answers
    return result


def _greedy_task(args: tuple) -> tuple[str | None, bool]:
    completion, gold, benchmark = args
    answer = extract_answer(completion, benchmark)
    return answer, answers_equal(answer, gold)


def _map(fn, tasks: list, workers: int) -> list:
    if workers and workers > 1 and len(tasks) > 1:
        import multiprocessing

        # spawn, not fork: the parent holds torch's thread pools, which a fork can deadlock.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
    return [fn(t) for t in tasks]


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@dataclass
class GenerationStats:
    """What happened during generation: truncations, token counts, time."""

    prompts_truncated: int = 0
    completions_at_length_limit: int = 0
    generated_tokens: int = 0
    sequences: int = 0
    seconds: float = 0.0


def _context_limit(model) -> int | None:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def generate_completions(model, tokenizer, prompts: Sequence[str], *, num_samples: int, do_sample: bool,
                         temperature: float, top_p: float, max_new_tokens: int, batch_size: int,
                         stops: Sequence[str], stats: GenerationStats) -> list[list[str]]:
    """``num_samples`` completions per prompt (greedy when ``do_sample`` is False), cut at ``stops``.

    Prompts are processed longest first in batches of about ``batch_size`` sequences, left
    padded; a prompt too long for the context is cut from the left and counted.
    """
    import torch

    from training.rl.rollout import left_pad

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = {tokenizer.eos_token_id}
    cfg_eos = getattr(model.generation_config, "eos_token_id", None)
    eos_ids.update(cfg_eos if isinstance(cfg_eos, (list, tuple)) else [cfg_eos])
    eos_ids.discard(None)
    limit = _context_limit(model)
    max_prompt = None if limit is None else limit - max_new_tokens
    if max_prompt is not None and max_prompt < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a {limit}-token context")

    encoded = []
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"]
        if max_prompt is not None and len(ids) > max_prompt:
            ids = ids[-max_prompt:]
            stats.prompts_truncated += 1
        encoded.append(ids)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    per_call = min(num_samples, batch_size)
    prompts_per_call = max(1, batch_size // per_call)
    rounds = math.ceil(num_samples / per_call)
    results: list[list[str]] = [[] for _ in prompts]
    gen_kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id, "eos_token_id": sorted(eos_ids),
                      "use_cache": True}
    if stops:
        gen_kwargs.update(stop_strings=list(stops), tokenizer=tokenizer)
    if do_sample:
        gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    else:
        gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            for lo in range(0, len(order), prompts_per_call):
                chunk = order[lo: lo + prompts_per_call]
                ids, mask = left_pad([encoded[i] for i in chunk], pad_id)
                ids, mask = ids.to(device), mask.to(device)
                for r in range(rounds):
                    n_here = min(per_call, num_samples - r * per_call)
                    out = model.generate(input_ids=ids, attention_mask=mask, num_return_sequences=n_here,
                                         **gen_kwargs)
                    new = out[:, ids.shape[1]:].cpu()
                    for row in range(new.shape[0]):
                        tokens = new[row].tolist()
                        end = next((j for j, t in enumerate(tokens) if t in eos_ids or t == pad_id), len(tokens))
                        text = tokenizer.decode(tokens[:end], skip_special_tokens=True)
                        cut = cut_at_stop(text, tuple(stops))
                        if end == max_new_tokens and cut == text:
                            stats.completions_at_length_limit += 1
                        stats.generated_tokens += end
                        stats.sequences += 1
                        results[chunk[row // n_here]].append(cut)
    finally:
        model.train(was_training)
        stats.seconds += time.perf_counter() - start
    return results


# --------------------------------------------------------------------------------------------
# One benchmark
# --------------------------------------------------------------------------------------------


# Config fields that change the predictions: a resumed run must match them exactly.
_RESUME_KEYS = ("model", "tokenizer", "prompt_style", "shots", "greedy", "samples", "k", "temperature", "top_p",
                "max_new_tokens", "seed", "maj_max_exact_subsets", "maj_num_subsets")


def _resume_signature(cfg: EvalConfig, spec: BenchmarkSpec) -> dict:
    data = config_to_dict(cfg)
    return {"benchmark": spec.name, **{key: data[key] for key in _RESUME_KEYS}}


def _read_finished(predictions_path: Path, signature_path: Path, signature: dict) -> dict[int, dict]:
    """Records of a previous run with the same settings, by problem index (a torn last line is ignored)."""
    if not (predictions_path.exists() and signature_path.exists()):
        return {}
    try:
        if json.loads(signature_path.read_text(encoding="utf-8")) != signature:
            return {}
    except ValueError:
        return {}
    done: dict[int, dict] = {}
    with open(predictions_path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                break  # the run was killed while writing this line
            done[record["index"]] = record
    return done


def _score_chunk(model, tokenizer, spec: BenchmarkSpec, items: list[EvalItem], cfg: EvalConfig,
                 greedy_stats: GenerationStats, sample_stats: GenerationStats, bar) -> list[dict]:
    """Generate and score one chunk of problems; one prediction record per problem."""
    import torch

    prompts = [build_prompt(spec, item.question, cfg.prompt_style, cfg.shots, tokenizer) for item in items]
    stops = stop_strings(spec, cfg.prompt_style)
    records = [{"index": it.index, "question": it.question, "gold": it.gold} for it in items]
    if cfg.greedy:
        greedy = generate_completions(model, tokenizer, prompts, num_samples=1, do_sample=False, temperature=1.0,
                                      top_p=1.0, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                                      stops=stops, stats=greedy_stats)
        verdicts = _map(_greedy_task, [(g[0], it.gold, spec.name) for g, it in zip(greedy, items)], cfg.check_workers)
        for rec, g, (answer, ok) in zip(records, greedy, verdicts):
            rec.update(greedy_completion=g[0], greedy_answer=answer, greedy_correct=ok)
    if cfg.samples > 1:
        ks = cfg.ks_for(cfg.samples)
        torch.manual_seed(cfg.seed + items[0].index)  # reproducible per chunk, so a resumed run matches
        sampled = generate_completions(model, tokenizer, prompts, num_samples=cfg.samples, do_sample=True,
                                       temperature=cfg.temperature, top_p=cfg.top_p,
                                       max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                                       stops=stops, stats=sample_stats)
        tasks = [(comps, it.gold, spec.name, ks, cfg.seed + it.index, cfg.maj_max_exact_subsets, cfg.maj_num_subsets)
                 for comps, it in zip(sampled, items)]
        for rec, comps, scored in zip(records, sampled, _map(_score_task, tasks, cfg.check_workers)):
            rec.update(samples=comps, sample_answers=scored["answers"], sample_votes=scored["votes"],
                       sample_correct=scored["correct"], majority_answer=scored["majority"],
                       pass_at_k={str(k): scored[f"pass@{k}"] for k in ks},
                       maj_at_k={str(k): scored[f"maj@{k}"] for k in ks})
    bar.update(len(items))
    return records


def aggregate(records: list[dict], cfg: EvalConfig) -> dict:
    """Benchmark metrics from prediction records: greedy accuracy, mean Pass@K / Maj@K over problems."""
    n = max(len(records), 1)
    out: dict = {"problems": len(records)}
    if cfg.greedy:
        correct = sum(bool(r["greedy_correct"]) for r in records)
        out["greedy"] = {"accuracy": correct / n, "correct": correct,
                         "no_answer": sum(r["greedy_answer"] is None for r in records)}
    if cfg.samples > 1:
        ks = cfg.ks_for(cfg.samples)
        out["sampled"] = {
            "n": cfg.samples, "temperature": cfg.temperature, "top_p": cfg.top_p,
            "pass@k": {str(k): sum(r["pass_at_k"][str(k)] for r in records) / n for k in ks},
            "maj@k": {str(k): sum(r["maj_at_k"][str(k)] for r in records) / n for k in ks},
            "sample_accuracy": sum(r["sample_correct"] for r in records) / (n * cfg.samples),
            "no_answer_rate": sum(a is None for r in records for a in r["sample_answers"]) / (n * cfg.samples),
        }
    return out


def evaluate_benchmark(model, tokenizer, spec: BenchmarkSpec, items: list[EvalItem], cfg: EvalConfig,
                       predictions_path: Path) -> dict:
    """Generate, extract and score one benchmark, ``cfg.chunk_size`` problems at a time.

    Each finished chunk is appended to ``predictions_path`` at once, so memory stays bounded by
    one chunk and a rerun with the same settings (``cfg.resume``) skips the problems already
    there. Returns the benchmark's metrics (over all problems, resumed or new) and the
    generation counts of this run.
    """
    from tqdm.auto import tqdm

    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    signature_path = predictions_path.with_suffix(".settings.json")
    signature = _resume_signature(cfg, spec)
    done = _read_finished(predictions_path, signature_path, signature) if cfg.resume else {}
    wanted = {it.index for it in items}
    kept = [done[i] for i in sorted(done) if i in wanted]
    todo = [it for it in items if it.index not in done]
    signature_path.write_text(json.dumps(signature, indent=1), encoding="utf-8")
    with open(predictions_path, "w", encoding="utf-8") as fh:  # rewrite what is kept (drops a torn line)
        fh.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in kept)
    greedy_stats, sample_stats = GenerationStats(), GenerationStats()
    new: list[dict] = []
    desc = f"{spec.name}" + (f" greedy+{cfg.samples} samples" if cfg.samples > 1 else " greedy")
    with tqdm(total=len(todo), desc=desc, unit="problem") as bar:
        for lo in range(0, len(todo), cfg.chunk_size):
            chunk_records = _score_chunk(model, tokenizer, spec, todo[lo: lo + cfg.chunk_size], cfg,
                                         greedy_stats, sample_stats, bar)
            with open(predictions_path, "a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in chunk_records)
            new.extend(chunk_records)
    by_index = {r["index"]: r for r in kept + new}
    result = {"benchmark": spec.name, **aggregate([by_index[it.index] for it in items], cfg),
              "resumed_problems": len(kept)}
    if "greedy" in result:
        result["greedy"].update(asdict(greedy_stats))
    if "sampled" in result:
        result["sampled"].update(asdict(sample_stats))
    return result


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown_report(results: dict) -> str:
    """Tables like the paper's: top-1 greedy accuracy per benchmark, then Pass@K / Maj@K per K."""
    cfg = results["config"]
    benches = results["benchmarks"]
    model_name = Path(cfg["model"]).name or cfg["model"]
    lines = [f"# Evaluation of `{model_name}`", ""]
    style = "few-shot chain-of-thought" if cfg["prompt_style"] == "few_shot" else "zero-shot chat chain-of-thought"
    if cfg["greedy"]:
        names = [DISPLAY_NAMES.get(b, b) for b in benches]
        lines += [f"## Top-1 accuracy (greedy decoding, {style})", "",
                  "| Model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
                  f"| {model_name} | " + " | ".join(_pct(r.get("greedy", {}).get("accuracy")) for r in benches.values())
                  + " |", ""]
    sampled = {b: r["sampled"] for b, r in benches.items() if "sampled" in r}
    if sampled:
        ks = sorted({int(k) for r in sampled.values() for k in r["pass@k"]})
        lines += [f"## Pass@K and Maj@K (n = {cfg['samples']} samples per problem, temperature {cfg['temperature']})",
                  "", "| Benchmark | Metric | " + " | ".join(f"K={k}" for k in ks) + " |",
                  "|---|---|" + "---|" * len(ks)]
        for b, r in sampled.items():
            for metric, label in (("pass@k", "Pass@K"), ("maj@k", "Maj@K")):
                cells = [_pct(r[metric].get(str(k))) for k in ks]
                lines.append(f"| {DISPLAY_NAMES.get(b, b)} | {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Problems per benchmark: " + ", ".join(f"{DISPLAY_NAMES.get(b, b)} {r['problems']}"
                                                   for b, r in benches.items()) + ".", ""]
    return "\n".join(lines)


def plot_pass_maj(results: dict, png_path: Path) -> Path:
    """PNG of Pass@K and Maj@K against K (log2 axis), one panel per benchmark (as the paper's figure 7)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = results["benchmarks"]
    fig, axes = plt.subplots(1, max(len(benches), 1), figsize=(4.5 * max(len(benches), 1), 3.6), squeeze=False)
    for ax, (b, r) in zip(axes[0], benches.items()):
        s = r.get("sampled")
        if s:
            ks = sorted(int(k) for k in s["pass@k"])
            ax.plot(ks, [100 * s["pass@k"][str(k)] for k in ks], "o-", label="Pass@K")
            ax.plot(ks, [100 * s["maj@k"][str(k)] for k in ks], "s--", label="Maj@K")
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
        if "greedy" in r:
            ax.axhline(100 * r["greedy"]["accuracy"], color="grey", lw=0.8, ls=":", label="greedy")
        ax.set_title(DISPLAY_NAMES.get(b, b))
        ax.set_xlabel("K")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _torch_dtype(name: str, device):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError as exc:
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {name!r}") from exc


def run_evaluation(cfg: EvalConfig, model=None, tokenizer=None) -> dict:
    """Evaluate ``cfg.model`` (or the given model/tokenizer) on ``cfg.benchmarks``; write and return results."""
    import torch

    from training.modeling import load_model, load_tokenizer, pick_device

    if model is None and not cfg.model:
        raise ConfigError("--model PATH is required")
    device = pick_device(cfg.device)
    if tokenizer is None:
        tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
    tokenizer.padding_side = "left"
    if model is None:
        model = load_model(cfg.model, dtype=_torch_dtype(cfg.dtype, device))
    model.to(device)
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"config": config_to_dict(cfg), "benchmarks": {}, "skipped": {}}
    if cfg.samples > 1 and not cfg.ks_for(cfg.samples):
        raise ConfigError(f"no K in {cfg.k} is <= samples={cfg.samples}")
    start = time.perf_counter()
    for name in cfg.benchmarks:
        spec = get_benchmark(name)
        items, skipped = load_benchmark(spec.name, cfg.benchmark_dir or None, cfg.limit)
        results["skipped"][spec.name] = skipped
        if not items:
            raise ValueError(f"benchmark {spec.name}: no usable problems (skipped: {skipped})")
        results["benchmarks"][spec.name] = evaluate_benchmark(
            model, tokenizer, spec, items, cfg, predictions_path=out_dir / "predictions" / f"{spec.name}.jsonl")
    results["seconds"] = time.perf_counter() - start
    results["answer_check_stats"] = check_stats()
    with open(out_dir / "results.json", "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2, ensure_ascii=False)
    (out_dir / "results.md").write_text(markdown_report(results), encoding="utf-8")
    plot_pass_maj(results, out_dir / "pass_maj_at_k.png")
    return results


def main(argv: Sequence[str] | None = None) -> dict:
    cfg = parse_job_args(EvalConfig, argv, description=__doc__)
    results = run_evaluation(cfg)
    print(markdown_report(results))
    print(f"wrote {Path(cfg.output_dir) / 'results.json'}, results.md, pass_maj_at_k.png")
    return results


if __name__ == "__main__":
    main()
