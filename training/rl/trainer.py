"""One policy-gradient trainer for SFT, RFT, online RFT and GRPO (the paper's unified paradigm).

``PolicyGradientTrainer.update(rollout, coefficient)`` does one optimisation stage on a batch:

1. the gradient coefficient (``training.rl.coefficients``) gives per-token ``A`` and the rows to keep;
2. reference log-probs (no grad) when the KL term is on (beta > 0 and a reference model given);
3. old log-probs: with mu = 1 they are the current ones, detached, inside the loss (no extra
   forward pass); with mu > 1 one no-grad forward before the first update fixes them;
4. mu times: micro-batched forward/backward of ``training.rl.losses.policy_gradient_loss`` with
   the whole batch's normalisers (so accumulation equals one big batch), gradient clipping,
   one optimiser step.

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
from training.rl.losses import LOSS_TYPES, policy_gradient_loss
from training.rl.rollout import Rollout


@dataclass(frozen=True)
class UpdateSettings:
    """Loss and update settings (paper defaults: beta 0.04, clip 0.2 (PPO's), mu 1)."""

    beta: float = 0.04
    clip_eps: float = 0.2
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
