"""The training loops around ``PolicyGradientTrainer``: online (GRPO, PPO, online RFT), offline-sampled (RFT, DPO) and offline pairs (SFT, RFT).

``GRPORunner.run`` is the paper's algorithm 1 (iterative GRPO)::

    for iteration = 1..I:
        reference <- policy                       (a frozen in-memory copy: freeze_copy)
        for step = 1..M:
            a batch of questions                  (questions_per_step = batch_size / G)
            old policy <- policy                  (mu = 1: the current log-probs, detached)
            sample G outputs per question         (HFSampler: generate with KV cache)
            rewards                               (rule-based checker, or the PRM per step)
            advantages                            (group-normalised; outcome or process)
            mu policy updates                     (PolicyGradientTrainer.update)
        process supervision: train the PRM further on this iteration's policy samples
                             + a 10% replay of the historical data

Online RFT runs through the same loop with the RFT gradient coefficient and no reference model.
``run_offline`` feeds fixed (prompt, response) pairs through the same trainer (SFT: GC = 1;
offline RFT: GC = 1 for correct responses only).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from training.rl.coefficients import make_coefficient
from training.rl.config import GRPOJobConfig, ModelConfig, OptimConfig, SFTJobConfig
from training.rl.data import PromptResponse, Question, SkipCounter, build_prompt
from training.rl.generation import HFSampler, SamplingSettings
from training.rl.metrics import MetricsLog, plot_curves
from training.rl.prm import ProcessRewardModel, ReplayBuffer, add_step_ends, examples_from_rollout
from training.rl.rewards import RewardFn
from training.rl.rollout import Rollout, encode_pairs
from training.rl.steps import TokenTexts
from training.rl.trainer import PolicyGradientTrainer, UpdateSettings, freeze_copy

GRPO_PANELS = {"reward": ("reward_mean", "accuracy", "eval_accuracy"), "kl": ("kl",), "loss": ("loss", "clip_fraction")}
SFT_PANELS = {"loss": ("nll",)}

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_policy(cfg: ModelConfig):
    """(model, tokenizer, device) from a ModelConfig: a checkpoint folder or a spec + tokenizer folder."""
    from training.modeling import load_model, load_tokenizer, pick_device

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    tok_path = cfg.tokenizer or cfg.path
    if tok_path is None:
        raise ValueError("model.tokenizer is needed when the model is built from model.config")
    tokenizer = load_tokenizer(tok_path)
    if cfg.dtype not in _DTYPES:
        raise ValueError(f"model.dtype must be one of {sorted(_DTYPES)}")
    model = load_model(cfg.path or cfg.config, tokenizer=tokenizer, dtype=_DTYPES[cfg.dtype], seed=cfg.seed)
    device = pick_device(cfg.device)
    model.to(device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, device


def make_optimizer(params, optim: OptimConfig):
    """AdamW + LambdaLR (linear warm-up over ``warmup_steps`` updates, then constant)."""
    opt = torch.optim.AdamW(params, lr=optim.lr, betas=(optim.beta1, optim.beta2), weight_decay=optim.weight_decay)
    warm = max(optim.warmup_steps, 0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda n: min(1.0, (n + 1) / warm) if warm else 1.0)
    return opt, sched


class Cycler:
    """Endless shuffled passes over a list (reshuffled each pass, seeded)."""

    def __init__(self, items: Sequence, seed: int = 0) -> None:
        if not items:
            raise ValueError("no training items")
        self.items, self._rng = list(items), random.Random(seed)
        self._order: list[int] = []
        self.epochs = 0

    def take(self, n: int) -> list:
        out = []
        while len(out) < n:
            if not self._order:
                self._order = list(range(len(self.items)))
                self._rng.shuffle(self._order)
                self.epochs += 1
            out.append(self.items[self._order.pop()])
        return out


def save_checkpoint(directory: str | Path, model, tokenizer, state: dict) -> None:
    """Model + tokenizer as a Hugging Face folder, plus ``trainer_state.json`` (step, iteration, metrics)."""
    from training.modeling import save_model

    save_model(model, tokenizer, directory)
    with open(Path(directory) / "trainer_state.json", "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1)


def accuracy_of(
    model, sampler: HFSampler, questions: Sequence[Question], prompt_fn: Callable[[str], str], reward_fn: RewardFn
) -> float:
    """Greedy-decoding accuracy on ``questions`` (one output each)."""
    if not questions:
        return float("nan")
    rollout = sampler.sample(model, [prompt_fn(q.question) for q in questions], list(questions), 1, greedy=True)
    rewards = reward_fn(rollout.texts, rollout.questions)
    return sum(rewards) / len(rewards)


def _group_stats(rollout: Rollout) -> tuple[float, float]:
    """Mean within-group reward std, and the share of groups whose rewards are all equal (zero advantage)."""
    stds, flat = [], 0
    for g in torch.unique(rollout.group):
        r = rollout.rewards[rollout.group == g].float()
        stds.append(float(r.std()) if len(r) > 1 else 0.0)
        flat += int(bool(r.max() == r.min()))
    n = len(stds)
    return sum(stds) / max(n, 1), flat / max(n, 1)


class GRPORunner:
    """Iterative GRPO / online RFT on a question set; see the module docstring for the loop.

    ``callbacks`` are called as ``fn(event, runner)`` with event ``"iteration_start"`` (after the
    reference reset), ``"step_end"`` and ``"iteration_end"`` (after the PRM update).
    """

    def __init__(
        self,
        cfg: GRPOJobConfig,
        policy,
        tokenizer,
        questions: Sequence[Question],
        reward_fn: RewardFn,
        output_dir: str | Path,
        prm: ProcessRewardModel | None = None,
        eval_questions: Sequence[Question] = (),
        callbacks: Sequence[Callable] = (),
    ) -> None:
        self.cfg, self.policy, self.tokenizer = cfg, policy, tokenizer
        self.reward_fn, self.prm = reward_fn, prm
        self.output_dir = Path(output_dir)
        self.eval_questions = list(eval_questions)
        self.callbacks = list(callbacks)
        self.questions = Cycler(questions, cfg.seed)
        s = cfg.sampling
        settings = SamplingSettings(s.max_new_tokens, s.temperature, s.top_p, s.top_k, s.prompts_per_call)
        self.sampler = self._make_sampler(settings)
        method = cfg.method
        self.coefficient = make_coefficient(
            {"online_rft": "rft", "ppo": "grpo", "dpo": "grpo"}.get(method, method),
            cfg.supervision,
            cfg.loss.scale_advantages,
            cfg.loss.advantage_eps,
        )
        if method == "grpo" and cfg.supervision == "process" and prm is None:
            raise ValueError("process supervision needs a process reward model")
        opt, sched = make_optimizer(policy.parameters(), cfg.optim)
        self.trainer = PolicyGradientTrainer(
            policy,
            opt,
            UpdateSettings(
                beta=cfg.loss.beta if method == "grpo" else 0.0,  # KL in the loss: GRPO only
                clip_eps=cfg.loss.clip_eps,
                clip_eps_high=cfg.loss.clip_eps_high,
                loss_type=cfg.loss.loss_type,
                mu=cfg.mu,
                micro_batch_size=cfg.micro_batch_size,
                grad_clip=cfg.optim.grad_clip,
                temperature=s.temperature,
                max_length=s.max_new_tokens,
            ),
            sched,
        )
        self.critic = self._make_critic() if method == "ppo" else None
        self.offline = None  # rft/dpo: the pool of the initial policy's samples (built in run)
        self.pairs = None
        self.prm_optimizer = None
        if prm is not None:
            self.prm_optimizer, _ = make_optimizer(prm.model.parameters(), OptimConfig(lr=cfg.prm.lr))
        self.replay = ReplayBuffer(cfg.prm.replay_fraction, cfg.prm.replay_capacity, cfg.seed)
        self.token_text = TokenTexts(tokenizer)
        self.ref_model = None
        self.ref_resets = 0
        self.step = 0
        self.iteration = 0
        self.fresh_prm_examples: list = []
        self.prm_history: list[dict] = []

    def _make_critic(self):
        from training.rl.ppo import PPOCritic, PPOSettings, ValueModel

        p = self.cfg.ppo
        value = ValueModel.from_pretrained(p.value_path) if p.value_path else ValueModel.from_policy(self.policy)
        value.model.to(next(self.policy.parameters()).device)
        opt, _ = make_optimizer(value.model.parameters(), OptimConfig(lr=p.value_lr or self.cfg.optim.lr))
        settings = PPOSettings(
            beta=self.cfg.loss.beta,
            gamma=p.gamma,
            lam=p.lam,
            value_clip=p.value_clip,
            whiten_advantages=p.whiten_advantages,
            micro_batch_size=self.cfg.micro_batch_size,
            grad_clip=self.cfg.optim.grad_clip,
            loss_type=self.cfg.loss.loss_type,
        )
        return PPOCritic(value, opt, settings)

    def uses_reference(self) -> bool:
        """GRPO (KL in the loss) and PPO (KL in the reward) with beta > 0, and DPO, keep a frozen reference."""
        return self.cfg.method == "dpo" or (self.cfg.method in ("grpo", "ppo") and self.cfg.loss.beta != 0.0)

    def build_offline_pool(self) -> None:
        """rft/dpo: sample the initial policy once (G outputs per question) and keep the scored groups."""
        from training.rl.offline import OfflinePool, PairPool

        cfg = self.cfg
        n = cfg.offline_questions or cfg.questions_per_step * cfg.iterations * cfg.steps_per_iteration
        questions = self.questions.take(n)
        self.offline = OfflinePool.sample(
            self.sample_and_score, questions, cfg.questions_per_step, self.tokenizer.pad_token_id, cfg.seed
        )
        if cfg.method == "dpo":
            self.pairs = PairPool(self.offline, cfg.dpo.pairs_per_question, cfg.seed)

    def memory_mib(self) -> dict[str, float]:
        """MiB of model state (parameters, gradients, optimiser state) held by each model of the method."""
        from training.rl.trainer import state_mib

        out = {"policy": state_mib(self.policy, self.trainer.optimizer)}
        if self.ref_model is not None:
            out["reference"] = state_mib(self.ref_model)
        if self.critic is not None:
            out["value_model"] = state_mib(self.critic.value_model.model, self.critic.optimizer)
        if self.prm is not None:
            out["prm"] = state_mib(self.prm.model, self.prm_optimizer)
        out["total"] = sum(out.values())
        return out

    def _make_sampler(self, settings: SamplingSettings) -> HFSampler:
        if self.cfg.sampling.backend == "vllm":
            from training.rl.generation import VLLMSampler

            if not self.cfg.model.path:
                raise ValueError("the vLLM backend needs model.path (a checkpoint folder)")
            return VLLMSampler(self.tokenizer, settings, self.cfg.model.path)
        return HFSampler(self.tokenizer, settings)

    def prompt(self, question: str) -> str:
        d = self.cfg.data
        return build_prompt(question, self.tokenizer, d.use_chat_template, d.instruction)

    def _emit(self, event: str) -> None:
        for fn in self.callbacks:
            fn(event, self)

    def sample_and_score(self, questions: Sequence[Question]) -> Rollout:
        """Sample G outputs per question and attach rewards, correctness and (process) step rewards."""
        rollout = self.sampler.sample(
            self.policy, [self.prompt(q.question) for q in questions], list(questions), self.cfg.sampling.group_size
        )
        rewards = self.reward_fn(rollout.texts, rollout.questions)
        rollout.rewards = torch.tensor(rewards, dtype=torch.float32)
        rollout.correct = rollout.rewards > 0.5
        if self.prm is not None:
            add_step_ends(rollout, self.tokenizer, self.token_text)
            if self.cfg.supervision == "process":
                rollout.step_rewards = self.prm.score(rollout, self.cfg.prm.micro_batch_size)
        return rollout

    def train_prm(self, examples: list, epochs: int) -> dict[str, float]:
        """Train the PRM on ``examples`` mixed with the replay of earlier data; then add them to the history."""
        mixed = self.replay.mix(examples)
        stats = self.prm.fit(
            mixed,
            self.prm_optimizer,
            epochs=epochs,
            batch_size=self.cfg.prm.batch_size,
            micro_batch_size=self.cfg.prm.micro_batch_size,
            seed=self.cfg.seed + self.iteration,
        )
        stats["prm_fresh"] = float(len(examples))
        stats["prm_replayed"] = float(len(mixed) - len(examples))
        self.replay.add(examples)
        stats["iteration"] = self.iteration
        self.prm_history.append(stats)
        return stats

    def run(self) -> dict:
        cfg = self.cfg
        self.output_dir.mkdir(parents=True, exist_ok=True)
        total = cfg.iterations * cfg.steps_per_iteration
        log = MetricsLog(self.output_dir, total, cfg.progress, desc=cfg.method)
        start = time.perf_counter()
        try:
            if self.eval_questions:
                acc0 = accuracy_of(self.policy, self.sampler, self.eval_questions, self.prompt, self.reward_fn)
                log.log({"step": 0, "eval_accuracy": acc0})
            if cfg.method in ("rft", "dpo"):
                self.build_offline_pool()
                log.log({"step": 0, "offline_groups": len(self.offline), "offline_accuracy": self.offline.accuracy,
                         "offline_pairs": len(self.pairs) if self.pairs is not None else None})
            for self.iteration in range(cfg.iterations):
                # DPO's reference stays the initial (SFT) model: its pairs come from that model
                if self.uses_reference() and (cfg.method != "dpo" or self.ref_model is None):
                    self.ref_model = None  # free the old copy before making the new one
                    self.ref_model = freeze_copy(self.policy)
                    self.ref_resets += 1
                self._emit("iteration_start")
                for _ in range(cfg.steps_per_iteration):
                    log.log(self._one_step())
                    self._emit("step_end")
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self._save(self.output_dir / "checkpoints" / f"step_{self.step:06d}")
                if self.prm is not None and self.fresh_prm_examples and self.iteration < cfg.iterations - 1:
                    stats = self.train_prm(self.fresh_prm_examples, cfg.prm.epochs_per_iteration)
                    self.fresh_prm_examples = []
                    log.log({"step": self.step, **stats})
                self._emit("iteration_end")
        finally:
            log.close()
        self._save(self.output_dir / "final")
        plots = plot_curves(log.rows, self.output_dir, GRPO_PANELS)
        step_rows = [r for r in log.rows if "reward_mean" in r]
        summary = {
            "method": cfg.method,
            "supervision": cfg.supervision,
            "steps": self.step,
            "iterations": cfg.iterations,
            "reference_resets": self.ref_resets,
            "seconds": time.perf_counter() - start,
            "reward_first": step_rows[0]["reward_mean"] if step_rows else None,
            "reward_last": step_rows[-1]["reward_mean"] if step_rows else None,
            "eval_accuracy": [r["eval_accuracy"] for r in log.rows if r.get("eval_accuracy") is not None],
            "skipped_updates": sum(1 for r in step_rows if r.get("skipped")),
            "prm_updates": self.prm_history,
            "memory_mib": self.memory_mib(),
            "plots": [Path(p).name for p in plots],
        }
        with open(self.output_dir / "summary.json", "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)
        return summary

    def _one_step(self) -> dict:
        cfg = self.cfg
        t0 = time.perf_counter()
        extra: dict = {}
        if cfg.method == "dpo":
            chosen, rejected = self.pairs.take(max(cfg.batch_size // 2, 1))
            rollout = Rollout.concat([chosen, rejected], self.tokenizer.pad_token_id)
            sample_s = 0.0
            d = cfg.dpo
            stats = self.trainer.update_preference(chosen, rejected, self.ref_model, d.beta, d.length_normalise)
        else:
            if cfg.method == "rft":
                rollout, sample_s = self.offline.take(cfg.questions_per_step), 0.0
            else:
                rollout = self.sample_and_score(self.questions.take(cfg.questions_per_step))
                sample_s = self.sampler.last_seconds
            if self.prm is not None:
                self.fresh_prm_examples.extend(examples_from_rollout(rollout))
            if self.critic is not None:
                coefficients, extra = self.critic.coefficients(rollout, self.trainer, self.ref_model)
            else:
                coefficients = self.coefficient(rollout)
            stats = self.trainer.update(rollout, coefficients, ref_model=self.ref_model)
            if self.critic is not None:
                stats.update(extra, **self.critic.update(rollout))
        self.step += 1
        std_in_group, flat = _group_stats(rollout)
        lengths = rollout.completion_mask.sum(1).float()
        row = {
            "step": self.step,
            "iteration": self.iteration,
            "reward_mean": float(rollout.rewards.mean()),
            "reward_std": float(rollout.rewards.std()) if len(rollout) > 1 else 0.0,
            "reward_std_in_group": std_in_group,
            "zero_advantage_groups": flat,
            "accuracy": float(rollout.correct.float().mean()),
            "response_length": float(lengths.mean()),
            "tokens_per_s": float(lengths.sum()) / sample_s if sample_s > 0 else None,  # None: offline, no sampling
            "sample_seconds": sample_s,
            "lr": self.trainer.optimizer.param_groups[0]["lr"],
            "reference_resets": self.ref_resets,
            **{k: v for k, v in stats.items() if k not in ("rows",)},
        }
        if rollout.step_rewards is not None:
            flat_steps = [x for r in rollout.step_rewards for x in r]
            row["step_reward_mean"] = sum(flat_steps) / max(len(flat_steps), 1)
            row["steps_per_response"] = len(flat_steps) / max(len(rollout), 1)
        if self.eval_questions and cfg.eval_every and self.step % cfg.eval_every == 0:
            row["eval_accuracy"] = accuracy_of(
                self.policy, self.sampler, self.eval_questions, self.prompt, self.reward_fn
            )
        row["step_seconds"] = time.perf_counter() - t0
        return row

    def _save(self, directory: Path) -> None:
        save_checkpoint(
            directory,
            self.policy,
            self.tokenizer,
            {"step": self.step, "iteration": self.iteration, "reference_resets": self.ref_resets},
        )
        if self.prm is not None:
            self.prm.save(str(directory / "prm"), self.tokenizer)


def filter_long_prompts(
    tokenizer, pairs: Sequence[PromptResponse], data_cfg, skips: SkipCounter
) -> tuple[list[PromptResponse], list[str]]:
    """Render every prompt once (chat template, instruction) and drop those over ``max_prompt_tokens``
    (counted as ``prompt_too_long``), so no training batch can come up empty."""
    kept, texts = [], []
    for lo in range(0, len(pairs), 1024):
        chunk = pairs[lo : lo + 1024]
        rendered = [build_prompt(p.prompt, tokenizer, data_cfg.use_chat_template, data_cfg.instruction) for p in chunk]
        lengths = [len(ids) for ids in tokenizer(rendered, add_special_tokens=False)["input_ids"]]
        for pair, text, n in zip(chunk, rendered, lengths):
            if n > data_cfg.max_prompt_tokens:
                skips["prompt_too_long"] += 1
            else:
                kept.append(pair)
                texts.append(text)
    if not kept:
        raise ValueError(f"no usable (prompt, response) pair: {skips.summary()}")
    return kept, texts


def run_offline(
    cfg: SFTJobConfig,
    policy,
    tokenizer,
    pairs: Sequence[PromptResponse],
    output_dir: str | Path,
    reward_fn: RewardFn | None = None,
    skips: SkipCounter | None = None,
    callbacks: Sequence[Callable] = (),
) -> dict:
    """SFT (GC = 1) or offline RFT (GC = 1 on correct responses) on fixed pairs through the unified trainer."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    skips = skips if skips is not None else SkipCounter()
    coefficient = make_coefficient(cfg.method)
    opt, sched = make_optimizer(policy.parameters(), cfg.optim)
    trainer = PolicyGradientTrainer(
        policy,
        opt,
        UpdateSettings(
            beta=0.0,
            loss_type=cfg.loss_type,
            micro_batch_size=cfg.micro_batch_size,
            grad_clip=cfg.optim.grad_clip,
            max_length=cfg.data.max_response_tokens,
        ),
        sched,
    )
    d = cfg.data
    pairs, prompt_texts = filter_long_prompts(tokenizer, pairs, d, skips)
    prompts = {id(p): t for p, t in zip(pairs, prompt_texts)}
    if cfg.method == "rft":
        if reward_fn is None:
            raise ValueError("offline RFT needs a reward function")
        if any(p.gold is None for p in pairs):
            raise ValueError(f"offline RFT needs a gold answer ({d.gold_field!r}) on every pair")
    stream = Cycler(pairs, cfg.seed)
    log = MetricsLog(output_dir, cfg.steps, cfg.progress, desc=cfg.method)
    start = time.perf_counter()
    try:
        for step in range(1, cfg.steps + 1):
            t0 = time.perf_counter()
            batch = stream.take(cfg.batch_size)
            rollout = encode_pairs(
                tokenizer,
                batch,
                [prompts[id(p)] for p in batch],
                d.max_prompt_tokens,
                d.max_response_tokens,
                skips if stream.epochs <= 1 else SkipCounter(),
            )
            if cfg.method == "rft":
                rollout.rewards = torch.tensor(reward_fn(rollout.texts, rollout.questions), dtype=torch.float32)
            stats = trainer.update(rollout, coefficient(rollout))
            row = {
                "step": step,
                "epoch": stream.epochs,
                "lr": opt.param_groups[0]["lr"],
                "response_length": float(rollout.completion_mask.sum(1).float().mean()),
                "tokens_per_s": stats.get("tokens", 0.0) / max(stats["update_seconds"], 1e-9),
                **{k: v for k, v in stats.items() if k not in ("kl", "clip_fraction", "policy_loss", "loss")},
            }
            if rollout.rewards is not None:
                row["accuracy"] = float(rollout.rewards.mean())
            row["step_seconds"] = time.perf_counter() - t0
            log.log(row)
            for fn in callbacks:
                fn("step_end", {"step": step, "stats": stats})
            if cfg.save_every and step % cfg.save_every == 0:
                save_checkpoint(output_dir / "checkpoints" / f"step_{step:06d}", policy, tokenizer, {"step": step})
    finally:
        log.close()
    save_checkpoint(output_dir / "final", policy, tokenizer, {"step": cfg.steps})
    plots = plot_curves(log.rows, output_dir, SFT_PANELS)
    nll = [r["nll"] for r in log.rows if isinstance(r.get("nll"), float) and math.isfinite(r["nll"])]
    summary = {
        "method": cfg.method,
        "steps": cfg.steps,
        "pairs": len(pairs),
        "epochs": stream.epochs,
        "nll_first": nll[0] if nll else None,
        "nll_last": nll[-1] if nll else None,
        "skipped_rows": skips.summary(),
        "seconds": time.perf_counter() - start,
        "plots": [Path(p).name for p in plots],
    }
    with open(output_dir / "summary.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    return summary
