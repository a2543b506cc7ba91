"""PPO's extra parts (DeepSeekMath section 4.1.1): a value model, the KL-penalised reward, GAE.

PPO and GRPO share the clipped surrogate (``training.rl.losses``) and the trainer; they differ in
how the gradient coefficient ``A_t`` is made:

| | PPO (``method: ppo``) | GRPO (``method: grpo``) |
|---|---|---|
| baseline | a learned value model ``V(q, o_<t)`` | the mean reward of the G outputs of the question |
| advantage | GAE(gamma, lambda) over ``r_t`` | the group-normalised reward on every token |
| KL to the reference | in the reward, per token (equation 2) | in the loss (unbiased estimator) |
| extra memory | a second model of the policy's size + its optimiser state | none |

``ValueModel`` is a value head on the policy's architecture: a token-classification model
(one output) whose transformer body starts as a copy of the policy's, trained with the clipped
value loss. ``PPOCritic.coefficients`` turns a scored rollout into GAE advantages (stored with
the returns and old values for its own ``update``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.rl.advantages import gae, kl_penalised_rewards, whiten
from training.rl.coefficients import Coefficients
from training.rl.logprobs import position_ids_from_mask
from training.rl.losses import clipped_value_loss, per_token_kl
from training.rl.rollout import Rollout


class ValueModel:
    """``V(q, o_<t)`` for every completion token t: a scalar head on a transformer body."""

    def __init__(self, model) -> None:
        self.model = model

    @classmethod
    def from_policy(cls, policy, seed: int = 0) -> ValueModel:
        """A value model whose body is a copy of the (in-memory) policy's, with a fresh zero-initialised head."""
        from transformers import AutoModelForTokenClassification

        torch.manual_seed(seed)
        config = policy.config.__class__.from_dict(policy.config.to_dict())
        config.num_labels = 1
        model = AutoModelForTokenClassification.from_config(config)
        getattr(model, model.base_model_prefix).load_state_dict(getattr(policy, policy.base_model_prefix).state_dict())
        head = getattr(model, "score", None) or getattr(model, "classifier", None)
        if head is not None:  # start at V = 0 (the critic knows nothing yet), as OpenRLHF/verl do
            torch.nn.init.zeros_(head.weight)
            if getattr(head, "bias", None) is not None:
                torch.nn.init.zeros_(head.bias)
        return cls(model.to(next(policy.parameters()).device))

    @classmethod
    def from_pretrained(cls, path: str) -> ValueModel:
        from transformers import AutoModelForTokenClassification

        return cls(AutoModelForTokenClassification.from_pretrained(path, num_labels=1, local_files_only=True))

    def values(self, rollout: Rollout) -> torch.Tensor:
        """``[N, T]``: the value of the state before completion token t (read at the position of the
        token before it, the same alignment as the log-probs). Padding positions hold garbage."""
        device = next(self.model.parameters()).device
        ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1).to(device)
        attn = torch.cat([rollout.prompt_mask, rollout.completion_mask], 1).to(device)
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=position_ids_from_mask(attn)).logits[..., 0]
        width, prompt_width = rollout.completion_ids.shape[1], rollout.prompt_ids.shape[1]
        return out[:, prompt_width - 1 : prompt_width - 1 + width].float()


@dataclass(frozen=True)
class PPOSettings:
    """PPO's settings (the paper gives none beyond beta; gamma 1 and lambda 0.95 are the usual LLM values)."""

    beta: float = 0.04  # KL coefficient in the reward (equation 2)
    gamma: float = 1.0
    lam: float = 0.95
    value_clip: float = 0.2
    whiten_advantages: bool = True
    micro_batch_size: int = 8
    grad_clip: float = 1.0
    loss_type: str = "grpo"


class PPOCritic:
    """The value model, its optimiser, and the per-step GAE bookkeeping of PPO."""

    def __init__(self, value_model: ValueModel, optimizer, settings: PPOSettings) -> None:
        self.value_model, self.optimizer, self.settings = value_model, optimizer, settings
        self._old_values: torch.Tensor | None = None
        self._returns: torch.Tensor | None = None

    def _chunks(self, n: int):
        size = self.settings.micro_batch_size
        return [list(range(lo, min(lo + size, n))) for lo in range(0, n, size)]

    @torch.no_grad()
    def values_no_grad(self, rollout: Rollout) -> torch.Tensor:
        self.value_model.model.eval()
        out = torch.zeros(rollout.completion_ids.shape, dtype=torch.float32)
        for idx in self._chunks(len(rollout)):
            v = self.value_model.values(rollout.select(idx))
            out[idx, : v.shape[1]] = v.cpu()
        return out

    def coefficients(self, rollout: Rollout, trainer, ref_model) -> tuple[Coefficients, dict[str, float]]:
        """GAE advantages of the rollout (old policy = the sampling policy) and statistics.

        ``trainer`` gives the no-grad log-probs of the policy and of the frozen reference.
        """
        if rollout.rewards is None:
            raise ValueError("PPO needs rewards on the rollout")
        s = self.settings
        mask = rollout.completion_mask.float()
        old_lp = trainer.logprobs_no_grad(trainer.policy, rollout)
        ref_lp = trainer.logprobs_no_grad(ref_model, rollout) if ref_model is not None else old_lp
        token_rewards = kl_penalised_rewards(rollout.rewards, old_lp, ref_lp, mask, s.beta)
        old_values = self.values_no_grad(rollout) * mask
        adv, returns = gae(token_rewards, old_values, mask, s.gamma, s.lam)
        self._old_values, self._returns = old_values, returns
        num_tokens = mask.sum().clamp(min=1.0)
        stats = {
            "kl": float((per_token_kl(old_lp, ref_lp) * mask).sum() / num_tokens),
            "kl_reward": float(((-s.beta) * (old_lp - ref_lp) * mask).sum() / num_tokens),
            "value_mean": float(old_values.sum() / num_tokens),
            "advantage_raw_mean": float(adv.sum() / num_tokens),
        }
        if s.whiten_advantages:
            adv = whiten(adv, mask.bool())
        return Coefficients(adv * mask, torch.ones(len(rollout), dtype=torch.bool)), stats

    def update(self, rollout: Rollout) -> dict[str, float]:
        """One optimiser step of the value model on the clipped value loss (targets from ``coefficients``)."""
        if self._returns is None or self._old_values is None:
            raise RuntimeError("call coefficients() on this rollout first")
        s = self.settings
        model = self.value_model.model
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        device = next(model.parameters()).device
        norm = {"num_sequences": len(rollout), "num_tokens": rollout.num_tokens, "loss_type": s.loss_type}
        loss_sum, clip_sum = 0.0, 0.0
        for idx in self._chunks(len(rollout)):
            part = rollout.select(idx)
            width = part.completion_ids.shape[1]
            values = self.value_model.values(part)
            loss, clipped = clipped_value_loss(
                values,
                self._old_values[idx, :width].to(device),
                self._returns[idx, :width].to(device),
                part.completion_mask.to(device),
                s.value_clip,
                max_length=width,
                **norm,
            )
            loss.backward()
            loss_sum += float(loss.detach())
            clip_sum += float(clipped)
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip if s.grad_clip > 0 else float("inf"))
        )
        self.optimizer.step()
        self._old_values = self._returns = None
        return {"value_loss": loss_sum, "value_clip_fraction": clip_sum, "value_grad_norm": grad_norm}
