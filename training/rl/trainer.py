"""One policy-gradient trainer for SFT, RFT, online RFT and GRPO (the paper's unified paradigm).

``PolicyGradientTrainer.update(rollout, coefficient)`` does one optimisation stage on a batch:

1. the gradient coefficient (``training.rl.coefficients``) gives per-token ``A`` and the rows to keep;
2. reference log-probs (no grad) when the KL term is on (beta > 0 and a reference model given);
3. old log-probs: with mu = 1 they are the current ones, detached, inside the loss (no extra
   forward pass); with mu > 1 one no-grad forward before the first update fixes them;
4. mu times: micro-batched forward/backward of ``training.rl.losses.policy_gradient_loss`` with
   the whole batch's normalisers (so accumulation equals one big batch), gradient clipping,
   one optimiser step.

DPO (``update_preference``) trains on (chosen, rejected) pairs with the DPO loss instead; its
gradient coefficient ``sigmoid(-beta * margin)`` is logged (paper appendix A.1.3).

SFT and RFT use the same path with beta = 0: their ratio is 1 and the gradient is
``GC * grad log pi``. Returns a dict of statistics (loss, KL, clip fraction, response NLL,
gradient norm, tokens).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from training.rl.coefficients import Coefficients
from training.rl.logprobs import completion_logprobs
from training.rl.losses import LOSS_TYPES, dpo_gradient_coefficient, dpo_loss, dpo_margin, policy_gradient_loss, sequence_logprob
from training.rl.rollout import Rollout


@dataclass(frozen=True)
class UpdateSettings:
    """Loss and update settings (paper defaults: beta 0.04, clip 0.2 (PPO's), mu 1)."""

    beta: float = 0.04
    clip_eps: float = 0.2
    clip_eps_high: float | None = None  # clip-higher (DAPO); None: symmetric, as the paper
    loss_type: str = "grpo"
    mu: int = 1
    micro_batch_size: int = 8
    grad_clip: float = 1.0
    temperature: float = 1.0
    max_length: int | None = None  # dr_grpo's constant; defaults to the batch's completion width

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.mu < 1 or self.micro_batch_size < 1:
            raise ValueError("mu and micro_batch_size must be >= 1")


def freeze_copy(model):
    """A frozen in-memory copy of ``model`` (the reference policy): eval mode, no gradients."""
    import copy

    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


class PolicyGradientTrainer:
    """Owns the policy and its optimiser; ``update`` is one sampling stage's worth of training."""

    def __init__(self, policy, optimizer, settings: UpdateSettings, scheduler=None) -> None:
        self.policy = policy
        self.optimizer = optimizer
        self.settings = settings
        self.scheduler = scheduler
        self.updates = 0

    def _chunks(self, n: int):
        size = self.settings.micro_batch_size
        return [list(range(lo, min(lo + size, n))) for lo in range(0, n, size)]

    @torch.no_grad()
    def logprobs_no_grad(self, model, rollout: Rollout) -> torch.Tensor:
        """``[N, T]`` log-probs of ``model`` on the rollout, micro-batched, without gradients."""
        out = torch.zeros(rollout.completion_ids.shape, dtype=torch.float32)
        for idx in self._chunks(len(rollout)):
            part = rollout.select(idx)
            lp = completion_logprobs(
                model,
                part.prompt_ids,
                part.prompt_mask,
                part.completion_ids,
                part.completion_mask,
                self.settings.temperature,
            )
            out[idx, : lp.shape[1]] = lp.float().cpu()
        return out

    def update(self, rollout: Rollout, coefficients: Coefficients, ref_model=None) -> dict[str, float]:
        s = self.settings
        start = time.perf_counter()
        keep = coefficients.keep.nonzero().squeeze(1)
        stats: dict[str, float] = {"rows": float(len(rollout)), "rows_trained": float(len(keep))}
        if len(keep) == 0:
            stats.update(
                skipped=1.0,
                loss=0.0,
                policy_loss=0.0,
                kl=0.0,
                clip_fraction=0.0,
                nll=float("nan"),
                grad_norm=0.0,
                update_seconds=time.perf_counter() - start,
            )
            return stats
        if len(keep) < len(rollout):
            rollout = rollout.select(keep)
            values = coefficients.values[keep][:, : rollout.completion_ids.shape[1]]
        else:
            values = coefficients.values
        device = next(self.policy.parameters()).device
        use_kl = s.beta != 0.0 and ref_model is not None
        ref_lp = self.logprobs_no_grad(ref_model, rollout) if use_kl else None
        old_lp = self.logprobs_no_grad(self.policy, rollout) if s.mu > 1 else None
        norm = {
            "num_sequences": len(rollout),
            "num_tokens": rollout.num_tokens,
            "max_length": s.max_length or rollout.completion_ids.shape[1],
        }
        self.policy.train()
        totals = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        nll_sum, grad_norm = 0.0, 0.0
        for _ in range(s.mu):
            self.optimizer.zero_grad(set_to_none=True)
            totals = dict.fromkeys(totals, 0.0)
            nll_sum = 0.0
            for idx in self._chunks(len(rollout)):
                part = rollout.select(idx)
                width = part.completion_ids.shape[1]
                mask = part.completion_mask.to(device)
                lp = completion_logprobs(
                    self.policy,
                    part.prompt_ids,
                    part.prompt_mask,
                    part.completion_ids,
                    part.completion_mask,
                    s.temperature,
                )
                parts = policy_gradient_loss(
                    lp,
                    values[idx, :width].to(device),
                    mask,
                    old_logprobs=None if old_lp is None else old_lp[idx, :width].to(device),
                    ref_logprobs=None if ref_lp is None else ref_lp[idx, :width].to(device),
                    beta=s.beta,
                    clip_eps=s.clip_eps,
                    clip_eps_high=s.clip_eps_high,
                    loss_type=s.loss_type,
                    **norm,
                )
                parts.loss.backward()
                totals["loss"] += float(parts.loss.detach())
                totals["policy_loss"] += float(parts.policy_loss)
                totals["kl"] += float(parts.kl)
                totals["clip_fraction"] += float(parts.clip_fraction)
                nll_sum += float(-(lp.detach() * mask).sum())
            if s.grad_clip and s.grad_clip > 0:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.grad_clip))
            else:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), float("inf")))
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.updates += 1
        stats.update(totals)
        stats["nll"] = nll_sum / max(rollout.num_tokens, 1)
        stats["grad_norm"] = grad_norm
        stats["tokens"] = float(rollout.num_tokens)
        stats["update_seconds"] = time.perf_counter() - start
        return stats

    def _step(self) -> float:
        """Clip the gradient, step the optimiser and the schedule; returns the gradient norm before clipping."""
        clip = self.settings.grad_clip if self.settings.grad_clip and self.settings.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip))
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.updates += 1
        return grad_norm

    def update_preference(
        self, chosen: Rollout, rejected: Rollout, ref_model, beta: float = 0.1, length_normalise: bool = True
    ) -> dict[str, float]:
        """One DPO update on P pairs (row i of ``chosen`` is preferred to row i of ``rejected``).

        Loss ``-mean log sigmoid(beta * m)`` with ``m`` the difference of the (length-normalised,
        by default as in the paper's A.1.3) log-ratios to the frozen reference; micro-batched
        over pairs with the whole batch's pair count, so accumulation equals one big batch.
        """
        if len(chosen) != len(rejected) or len(chosen) == 0:
            raise ValueError("chosen and rejected must hold the same, non-zero number of rows")
        if ref_model is None:
            raise ValueError("DPO needs a reference model")
        start = time.perf_counter()
        device = next(self.policy.parameters()).device
        ref_c = sequence_logprob(self.logprobs_no_grad(ref_model, chosen), chosen.completion_mask, length_normalise)
        ref_r = sequence_logprob(self.logprobs_no_grad(ref_model, rejected), rejected.completion_mask, length_normalise)
        self.policy.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, margins = 0.0, []
        num_pairs = len(chosen)
        for idx in self._chunks(num_pairs):
            seq = []
            for side in (chosen.select(idx), rejected.select(idx)):
                lp = completion_logprobs(
                    self.policy,
                    side.prompt_ids,
                    side.prompt_mask,
                    side.completion_ids,
                    side.completion_mask,
                    self.settings.temperature,
                )
                seq.append(sequence_logprob(lp, side.completion_mask.to(device), length_normalise))
            rc, rr = ref_c[idx].to(device), ref_r[idx].to(device)
            loss = dpo_loss(seq[0], seq[1], rc, rr, beta, num_pairs=num_pairs)
            loss.backward()
            loss_sum += float(loss.detach())
            margins.append(dpo_margin(seq[0].detach(), seq[1].detach(), rc, rr).cpu())
        grad_norm = self._step()
        margin = torch.cat(margins)
        return {
            "rows": float(2 * num_pairs),
            "rows_trained": float(2 * num_pairs),
            "pairs": float(num_pairs),
            "loss": loss_sum,
            "dpo_margin": float(margin.mean()),
            "dpo_pair_accuracy": float((margin > 0).float().mean()),
            "dpo_gc": float(dpo_gradient_coefficient(margin, beta).mean()),
            "kl": 0.0,
            "clip_fraction": 0.0,
            "grad_norm": grad_norm,
            "tokens": float(chosen.num_tokens + rejected.num_tokens),
            "update_seconds": time.perf_counter() - start,
        }


def state_mib(model, optimizer=None) -> float:
    """MiB held by a model's parameters, their gradients and (if given) the optimiser's state tensors."""
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        if p.grad is not None:
            total += p.grad.numel() * p.grad.element_size()
    if optimizer is not None:
        for state in optimizer.state.values():
            total += sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
    return total / 2**20
