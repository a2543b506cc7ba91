"""Gradient coefficients: the one piece that differs between SFT, RFT, online RFT and GRPO.

The paper (section 5.2.1) writes every method's gradient as

    grad J = E[(q, o) ~ data source] [ 1/|o| sum_t GC(q, o, t, reward) * grad log pi(o_t | q, o_<t) ]

and the methods differ only in the data source and the gradient coefficient GC:

| method      | data source                      | GC                                          |
|-------------|----------------------------------|---------------------------------------------|
| SFT         | offline (prompt, response) pairs | 1                                           |
| RFT         | offline samples of the SFT model | 1 if the answer is right, else 0            |
| online RFT  | samples of the current policy    | 1 if the answer is right, else 0            |
| GRPO        | samples of the current policy    | group-normalised advantage (+ clip and KL)  |

Each class here turns a ``Rollout`` into ``[N, T]`` per-token coefficients (the ``A`` of
``training.rl.losses``) and a ``keep`` mask of rows worth a forward pass. RFT keeps only the
correct rows (training on the right answers, as the paper defines RFT); the others would
contribute exactly zero gradient, so dropping them saves compute and makes the loss the mean
over the kept samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.rl.advantages import DEFAULT_EPS, outcome_advantages, process_advantages, tokens_from_sequence_advantages
from training.rl.rollout import Rollout


@dataclass(frozen=True)
class Coefficients:
    """Per-token gradient coefficients ``[N, T]`` and the rows ``[N]`` to train on."""

    values: torch.Tensor
    keep: torch.Tensor


class SFTCoefficient:
    """GC = 1 on every response token."""

    name = "sft"

    def __call__(self, rollout: Rollout) -> Coefficients:
        mask = rollout.completion_mask.float()
        return Coefficients(mask, torch.ones(len(rollout), dtype=torch.bool))


class RFTCoefficient:
    """GC = 1 on the tokens of responses whose answer is right, 0 (row dropped) otherwise.

    Offline RFT and online RFT use this same class; only the data source differs.
    """

    name = "rft"

    def __call__(self, rollout: Rollout) -> Coefficients:
        if rollout.rewards is None:
            raise ValueError("RFT needs rewards on the rollout (a reward function and gold answers)")
        correct = rollout.rewards > 0.5
        values = rollout.completion_mask.float() * correct.float().unsqueeze(1)
        return Coefficients(values, correct)


class GRPOOutcomeCoefficient:
    """GC = the group-normalised outcome reward of the output, on each of its tokens."""

    name = "grpo"

    def __init__(self, scale: bool = True, eps: float = DEFAULT_EPS) -> None:
        self.scale, self.eps = scale, eps

    def __call__(self, rollout: Rollout) -> Coefficients:
        if rollout.rewards is None:
            raise ValueError("GRPO needs rewards on the rollout")
        adv = torch.zeros(len(rollout), dtype=torch.float32)
        for g in torch.unique(rollout.group):
            rows = (rollout.group == g).nonzero().squeeze(1)
            adv[rows] = outcome_advantages(rollout.rewards[rows].float(), scale=self.scale, eps=self.eps)
        return Coefficients(
            tokens_from_sequence_advantages(adv, rollout.completion_mask), torch.ones(len(rollout), dtype=torch.bool)
        )


class GRPOProcessCoefficient:
    """GC of token t = sum of the group-normalised rewards of the steps ending at or after t."""

    name = "grpo_process"

    def __init__(self, scale: bool = True, eps: float = DEFAULT_EPS) -> None:
        self.scale, self.eps = scale, eps

    def __call__(self, rollout: Rollout) -> Coefficients:
        if rollout.step_rewards is None or rollout.step_ends is None:
            raise ValueError("process supervision needs step_ends and step_rewards on the rollout")
        num_tokens = rollout.completion_ids.shape[1]
        values = torch.zeros(len(rollout), num_tokens, dtype=torch.float32)
        for g in torch.unique(rollout.group):
            rows = (rollout.group == g).nonzero().squeeze(1).tolist()
            width = max(1, max(len(rollout.step_ends[r]) for r in rows))
            ends = torch.zeros(len(rows), width, dtype=torch.long)
            rewards = torch.zeros(len(rows), width, dtype=torch.float32)
            mask = torch.zeros(len(rows), width, dtype=torch.bool)
            for k, r in enumerate(rows):
                n = len(rollout.step_ends[r])
                if n != len(rollout.step_rewards[r]):
                    raise ValueError(f"row {r}: {n} step ends but {len(rollout.step_rewards[r])} step rewards")
                ends[k, :n] = torch.as_tensor(rollout.step_ends[r], dtype=torch.long)
                rewards[k, :n] = torch.as_tensor(rollout.step_rewards[r], dtype=torch.float32)
                mask[k, :n] = True
            values[rows] = process_advantages(rewards, ends, mask, num_tokens, scale=self.scale, eps=self.eps)
        values = values * rollout.completion_mask.float()
        return Coefficients(values, torch.ones(len(rollout), dtype=torch.bool))


def make_coefficient(method: str, supervision: str = "outcome", scale: bool = True, eps: float = DEFAULT_EPS):
    """The coefficient for ``method`` in {sft, rft, online_rft, grpo} (GRPO: outcome or process supervision).

    PPO's and DPO's coefficients depend on a value model and on preference pairs: they are
    ``training.rl.ppo`` (GAE advantages) and ``losses.dpo_gradient_coefficient``."""
    if method == "sft":
        return SFTCoefficient()
    if method in ("rft", "online_rft"):
        return RFTCoefficient()
    if method == "grpo":
        if supervision == "process":
            return GRPOProcessCoefficient(scale, eps)
        if supervision == "outcome":
            return GRPOOutcomeCoefficient(scale, eps)
        raise ValueError(f"unknown supervision {supervision!r}; expected outcome or process")
    raise ValueError(f"unknown method {method!r}; expected sft, rft, online_rft or grpo (ppo and dpo: training.rl.ppo, losses.dpo_loss)")
