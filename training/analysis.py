"""The paper's RL analysis (section 5.2) as one command: ``python -m training.analysis --config configs/analysis/tiny.yaml``.

Every run starts from the same warm start (the toy task's SFT model, or ``base.model.path``),
with the same data, samples per step and number of steps, for each seed in ``seeds``; the runs
differ only by their ``runs.<name>`` overrides of the ``training.grpo`` config (method,
supervision, iterations, loss variant). Runs go through ``training.grpo.run``, the one trainer,
``workers`` at a time in separate processes (one torch thread each).

Writes under ``output_dir``:

- ``table.md`` / ``results.json``: per run, greedy held-out accuracy at the start, at the end
  (mean and spread over seeds) and its best, the last sampled training reward, seconds, and
  model-state memory (policy, reference, value model, PRM), and the sampled accuracy (Pass@1
  over ``final_samples`` samples per held-out question) of each final policy, less noisy than
  greedy accuracy on a small held-out set;
- one PNG per entry of ``figures`` (accuracy per step of the listed runs, mean over seeds with
  the min-max band): the paper's figure 5 (online vs offline, GRPO vs online RFT), outcome vs
  process supervision, one vs two RL iterations, the GRPO loss variants;
- ``pass_maj.png``: Pass@K (unbiased estimator) and Maj@K for K = 1..n before RL (the warm
  start) and after each run of ``pass_k_runs`` (the paper's figure 7), n samples per question.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import yaml

from training.config import build_config, config_to_dict, merge_trees, parse_job_args

DEFAULT_RUNS = {  # the paper's comparisons; grpo_2iter splits the default 100 steps into two iterations
    "rft": {"method": "rft"},
    "dpo": {"method": "dpo"},
    "online_rft": {"method": "online_rft"},
    "ppo": {"method": "ppo"},
    "grpo": {},
    "grpo_process": {"supervision": "process"},
    "grpo_2iter": {"iterations": 2, "steps_per_iteration": 50},
    "dapo": {"loss": {"loss_type": "token"}},
    "dr_grpo": {"loss": {"loss_type": "dr_grpo", "scale_advantages": False}},
    "grpo_mu2": {"mu": 2},
    "clip_higher": {"mu": 2, "loss": {"clip_eps_high": 0.28}},  # the clip acts only when mu > 1
}
DEFAULT_FIGURES = {
    "online_vs_offline": ["rft", "online_rft", "grpo"],
    "methods": ["rft", "dpo", "online_rft", "ppo", "grpo"],
    "outcome_vs_process": ["grpo", "grpo_process"],
    "iterations": ["grpo", "grpo_2iter"],
    "variants": ["grpo", "dapo", "dr_grpo", "grpo_mu2", "clip_higher"],
}


@dataclass
class AnalysisConfig:
    """The comparison: a base ``training.grpo`` config, named runs (overrides of it), seeds, figures."""

    base_config: str | None = None  # a training.grpo YAML (e.g. configs/grpo/tiny.yaml)
    base: dict = field(default_factory=dict)  # overrides of that config shared by every run
    runs: dict = field(default_factory=lambda: dict(DEFAULT_RUNS))  # name -> overrides of the base
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    figures: dict = field(default_factory=lambda: dict(DEFAULT_FIGURES))
    pass_k_runs: list[str] = field(default_factory=lambda: ["grpo"])
    pass_k_questions: int = 32
    pass_k_samples: int = 64  # n per question; K = 1..n
    final_samples: int = 16  # every run's final policy: sampled accuracy (Pass@1) over n samples per eval question
    final_questions: int = 64
    workers: int = 2
    output_dir: str = "runs/analysis"
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("runs: name at least one run (name -> overrides of the training.grpo config)")
        if not self.seeds or self.workers < 1 or self.pass_k_samples < 1:
            raise ValueError("seeds must be non-empty, workers and pass_k_samples >= 1")
        for name, members in self.figures.items():
            missing = [m for m in members if m not in self.runs]
            if missing:
                raise ValueError(f"figure {name!r} names runs that are not defined: {missing}")
        missing = [m for m in self.pass_k_runs if m not in self.runs]
        if missing:
            raise ValueError(f"pass_k_runs names runs that are not defined: {missing}")


# ---------------------------------------------------------------- the jobs (run in worker processes)


def _job_config(tree: dict):
    from training.rl.config import GRPOJobConfig

    return build_config(GRPOJobConfig, tree)


def pass_maj_curve(model_path: str, tree: dict, num_questions: int, n: int, seed: int = 0) -> dict:
    """Mean Pass@K (unbiased) and Maj@K over ``num_questions`` held-out questions, n samples each, K = 1..n."""
    import torch

    from training.answers import extract_answer
    from training.evaluate import score_samples
    from training.modeling import load_model, load_tokenizer
    from training.rl.data import build_prompt, load_questions
    from training.rl.generation import HFSampler, SamplingSettings

    cfg = _job_config(tree)
    torch.set_num_threads(1)
    tokenizer, model = load_tokenizer(model_path), load_model(model_path)
    d, s = cfg.data, cfg.sampling
    questions = load_questions(d.eval_path or d.path, d.format, num_questions, d.benchmark)
    sampler = HFSampler(tokenizer, SamplingSettings(s.max_new_tokens, s.temperature, s.top_p, s.top_k, 4))
    torch.manual_seed(seed)
    prompts = [build_prompt(q.question, tokenizer, d.use_chat_template, d.instruction) for q in questions]
    rollout = sampler.sample(model, prompts, questions, n)
    ks = list(range(1, n + 1))
    sums = {f"pass@{k}": 0.0 for k in ks} | {f"maj@{k}": 0.0 for k in ks}
    for i, q in enumerate(questions):
        answers = [extract_answer(t, q.benchmark) for t in rollout.texts[i * n : (i + 1) * n]]
        scored = score_samples(answers, q.gold, ks, seed=seed, num_subsets=200, max_exact_subsets=200)
        for key in sums:
            sums[key] += scored[key]
    return {
        "ks": ks,
        "pass": [sums[f"pass@{k}"] / len(questions) for k in ks],
        "maj": [sums[f"maj@{k}"] / len(questions) for k in ks],
        "questions": len(questions),
    }


def run_job(job: dict) -> dict:
    """One (run, seed): train with ``training.grpo.run``; optionally measure Pass@K/Maj@K after."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    if job.get("kind") == "pass_maj":
        curve = pass_maj_curve(job["model"], job["tree"], job["questions"], job["samples"], job["seed"])
        result = {"name": job["name"], "seed": job["seed"], "pass_maj": curve}
        if job.get("final_samples"):
            final = pass_maj_curve(job["model"], job["tree"], job["final_questions"], job["final_samples"], 1)
            result["sampled_accuracy"] = final["pass"][0]
        return result | {"seconds": time.perf_counter() - start}
    from training.grpo import run

    summary = run(_job_config(job["tree"]))
    out = Path(job["tree"]["output_dir"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    result = {
        "name": job["name"],
        "seed": job["seed"],
        "summary": summary,
        "eval": [(r["step"], r["eval_accuracy"]) for r in rows if r.get("eval_accuracy") is not None],
        "reward": [(r["step"], r["reward_mean"]) for r in rows if "reward_mean" in r and "dpo_margin" not in r],
    }
    if job.get("final_samples"):
        final = pass_maj_curve(str(out / "final"), job["tree"], job["final_questions"], job["final_samples"], 1)
        result["sampled_accuracy"] = final["pass"][0]
    if job.get("pass_k"):
        result["pass_maj"] = pass_maj_curve(str(out / "final"), job["tree"], job["questions"], job["samples"], 0)
    result["seconds"] = time.perf_counter() - start
    return result


# ---------------------------------------------------------------- orchestration


def warm_start(cfg: AnalysisConfig, out: Path) -> dict:
    """The shared base tree with the warm-start policy and the data filled in (the toy SFT is run once here)."""
    tree: dict = {}
    if cfg.base_config:
        with open(cfg.base_config, encoding="utf-8") as fh:
            tree = yaml.safe_load(fh) or {}
    tree = merge_trees(tree, cfg.base)
    probe = _job_config(merge_trees(tree, {"output_dir": str(out / "warm")}))
    if probe.toy.enabled:
        from training.rl.toy import warm_start_policy

        paths = warm_start_policy(probe.toy, out / "warm", threads=1)
        data = {"path": probe.data.path or paths["questions"], "eval_path": probe.data.eval_path or paths["eval"]}
        if not probe.toy.instruction:
            data["instruction"] = None
        tree = merge_trees(tree, {"toy": {"enabled": False}, "model": {"path": paths["policy"]}, "data": data})
    return tree


def _mean_curve(curves: Sequence[Sequence[tuple[int, float]]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps present in every seed's curve, with the mean, min and max over seeds."""
    if not curves:
        return [], [], [], []
    steps = sorted(set.intersection(*[{s for s, _ in c} for c in curves]))
    by = [dict(c) for c in curves]
    vals = [[b[s] for b in by] for s in steps]
    return steps, [sum(v) / len(v) for v in vals], [min(v) for v in vals], [max(v) for v in vals]


def _sd(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarise(cfg: AnalysisConfig, results: list[dict]) -> dict:
    """Per run: accuracy curves over seeds and the table's numbers."""
    table = {}
    for name, overrides in cfg.runs.items():
        mine = [r for r in results if r["name"] == name and "summary" in r]
        if not mine:
            continue
        steps, mean, low, high = _mean_curve([r["eval"] for r in mine])
        finals = [r["eval"][-1][1] for r in mine if r["eval"]]
        final_mean = sum(finals) / len(finals) if finals else float("nan")
        spread = _sd(finals)
        memory = mine[0]["summary"].get("memory_mib", {})
        rewards = [r["reward"][-1][1] for r in mine if r["reward"]]
        sampled = [r["sampled_accuracy"] for r in mine if "sampled_accuracy" in r]
        table[name] = {
            "method": mine[0]["summary"]["method"],
            "supervision": mine[0]["summary"]["supervision"],
            "overrides": overrides,
            "seeds": len(mine),
            "steps": mine[0]["summary"]["steps"],
            "accuracy_start": mean[0] if mean else None,
            "accuracy_final": final_mean,
            "accuracy_final_sd": spread,
            "accuracy_best": max(mean) if mean else None,
            "train_reward_last": sum(rewards) / len(rewards) if rewards else None,
            "sampled_accuracy": sum(sampled) / len(sampled) if sampled else None,
            "sampled_accuracy_sd": _sd(sampled),
            "seconds": sum(r["seconds"] for r in mine) / len(mine),
            "memory_mib": memory,
            "curve": {"step": steps, "mean": mean, "min": low, "max": high},
        }
    return table


def markdown_table(table: dict, pass_maj: dict, start_sampled: float | None = None) -> str:
    head = "" if start_sampled is None else f"Sampled accuracy of the warm start: {start_sampled:.3f}.\n\n"
    lines = [
        "| run | method | supervision | steps | seeds | greedy acc. start | greedy final (mean ± sd) | best "
        "| sampled acc. final (mean ± sd) | train reward (last) | s / run | model state MiB (policy / ref / value / PRM) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in table.items():
        m = r["memory_mib"]
        mem = " / ".join(f"{m[k]:.1f}" if k in m else "-" for k in ("policy", "reference", "value_model", "prm"))
        reward = "n/a" if r["train_reward_last"] is None else f"{r['train_reward_last']:.3f}"
        if r["method"] in ("rft", "dpo"):
            reward = "n/a (offline)"
        sampled = "n/a" if r["sampled_accuracy"] is None else f"{r['sampled_accuracy']:.3f} ± {r['sampled_accuracy_sd']:.3f}"
        lines.append(
            f"| {name} | {r['method']} | {r['supervision']} | {r['steps']} | {r['seeds']} | {r['accuracy_start']:.3f} "
            f"| {r['accuracy_final']:.3f} ± {r['accuracy_final_sd']:.3f} | {r['accuracy_best']:.3f} | {sampled} | {reward} "
            f"| {r['seconds']:.0f} | {mem} |"
        )
    if pass_maj:
        ks = pass_maj[next(iter(pass_maj))]["ks"]
        shown = [k for k in (1, 4, 16, 64) if k in ks] or ks[-1:]
        lines += ["", "| model | " + " | ".join(f"Pass@{k}" for k in shown) + " | " + " | ".join(f"Maj@{k}" for k in shown) + " |"]
        lines.append("|---|" + "---|" * (2 * len(shown)))
        for name, c in pass_maj.items():
            p = " | ".join(f"{c['pass'][k - 1]:.3f}" for k in shown)
            q = " | ".join(f"{c['maj'][k - 1]:.3f}" for k in shown)
            lines.append(f"| {name} | {p} | {q} |")
    return head + "\n".join(lines) + "\n"


def plot_figures(cfg: AnalysisConfig, table: dict, pass_maj: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for fig_name, members in cfg.figures.items():
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for name in members:
            if name not in table:
                continue
            c = table[name]["curve"]
            ax.plot(c["step"], c["mean"], marker=".", label=name)
            ax.fill_between(c["step"], c["min"], c["max"], alpha=0.15)
        ax.set_xlabel("step")
        ax.set_ylabel("greedy accuracy (held out)")
        ax.set_title(f"{fig_name} ({len(cfg.seeds)} seeds: mean, min-max)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{fig_name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    if pass_maj:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        for name, c in pass_maj.items():
            axes[0].plot(c["ks"], c["maj"], label=name)
            axes[1].plot(c["ks"], c["pass"], label=name)
        for ax, title in zip(axes, ("Maj@K", "Pass@K (unbiased)")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("K")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "pass_maj.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    return written


def run_analysis(cfg: AnalysisConfig) -> dict:
    """Run every (run, seed) from one warm start; write the table, results.json and the figures."""
    start = time.perf_counter()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "analysis_config.json", "w", encoding="utf-8") as fh:
        json.dump(config_to_dict(cfg), fh, indent=1)
    base = warm_start(cfg, out)
    warm_model = base.get("model", {}).get("path")
    jobs = []
    if (cfg.pass_k_runs or cfg.final_samples) and warm_model:
        jobs.append(
            {"kind": "pass_maj", "name": "before RL", "seed": 0, "model": warm_model, "tree": base,
             "questions": cfg.pass_k_questions, "samples": cfg.pass_k_samples,
             "final_samples": cfg.final_samples, "final_questions": cfg.final_questions}
        )
    for name, overrides in cfg.runs.items():
        for seed in cfg.seeds:
            tree = merge_trees(merge_trees(base, overrides), {
                "seed": seed, "output_dir": str(out / "runs" / name / f"seed_{seed}"), "progress": False,
            })
            tree = merge_trees(tree, {"model": {"seed": seed, "threads": 1}})
            _job_config(tree)  # fail now, not inside a worker, on a bad override
            jobs.append({"name": name, "seed": seed, "tree": tree, "pass_k": name in cfg.pass_k_runs,
                         "questions": cfg.pass_k_questions, "samples": cfg.pass_k_samples,
                         "final_samples": cfg.final_samples, "final_questions": cfg.final_questions})
    results, failed = [], []
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="analysis")
    with ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for fut in futures:
            job = futures[fut]
            try:
                results.append(fut.result())
            except Exception as exc:  # one failed run is recorded, the others still finish
                failed.append({"name": job["name"], "seed": job["seed"], "error": f"{type(exc).__name__}: {exc}"})
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    table = summarise(cfg, results)
    pass_maj: dict = {}
    for r in results:
        if "pass_maj" in r and (r["name"] != "before RL" or cfg.pass_k_runs):
            key = r["name"] if r["name"] == "before RL" else f"after {r['name']}"
            pass_maj.setdefault(key, []).append(r["pass_maj"])
    pass_maj = {
        k: {"ks": v[0]["ks"], "pass": [sum(x) / len(v) for x in zip(*[c["pass"] for c in v])],
            "maj": [sum(x) / len(v) for x in zip(*[c["maj"] for c in v])], "curves": len(v)}
        for k, v in pass_maj.items()
    }
    plots = plot_figures(cfg, table, pass_maj, out)
    start_sampled = next(
        (r["sampled_accuracy"] for r in results if r["name"] == "before RL" and "sampled_accuracy" in r), None
    )
    (out / "table.md").write_text(markdown_table(table, pass_maj, start_sampled), encoding="utf-8")
    summary = {"runs": table, "pass_maj": pass_maj, "sampled_accuracy_start": start_sampled, "failed": failed, "plots": [Path(p).name for p in plots],
               "seconds": time.perf_counter() - start, "jobs": len(jobs)}
    with open(out / "results.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_job_args(AnalysisConfig, argv, __doc__)
    summary = run_analysis(cfg)
    print((Path(cfg.output_dir) / "table.md").read_text())
    print(f"{summary['jobs']} jobs, {len(summary['failed'])} failed, {summary['seconds']:.0f} s; plots: {summary['plots']}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
