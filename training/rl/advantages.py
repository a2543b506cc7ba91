"""GRPO advantages: outcome supervision and process supervision (DeepSeekMath section 4.1.2-4.1.3).

Outcome supervision: each of the G outputs of one question gets one reward r_i; the normalised
reward ``(r_i - mean(r)) / std(r)`` over the group is the advantage of *every* token of output i.

Process supervision: a process reward model scores the end of every reasoning step. All step
rewards of the group (all steps of all G outputs together) are normalised by their mean and
std; the advantage of token t of output i is the sum of the normalised rewards of the steps of
output i that end at or after t.

Choices the paper leaves open, made here and documented:
- ``std`` is the sample standard deviation (Bessel-corrected, as ``torch.std``; TRL and verl do
  the same), and ``eps`` (default 1e-6) is added to it. A group whose rewards are all equal
  gets exactly 0 for every advantage (checked explicitly, so neither 0/0 nor rounding noise
  divided by a tiny std can appear); a group of one output (or one step in all) likewise gets 0.
- ``scale=False`` drops the division by std (the Dr. GRPO variant) and keeps only the centring.
- Tokens after the last step end of an output (none, with the step rule of
  ``training.rl.steps``) get advantage 0.
"""

from __future__ import annotations

import torch

DEFAULT_EPS = 1e-6


def _normalise(values: torch.Tensor, mask: torch.Tensor | None, scale: bool, eps: float) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` over the masked entries of ``values`` (all entries when no mask)."""
    values = values.to(torch.float32)
    if mask is None:
        mask = torch.ones_like(values, dtype=torch.bool)
    mask = mask.to(torch.bool)
    count = mask.sum()
    if count == 0:
        return torch.zeros_like(values)
    real = values[mask]
    if bool(real.max() == real.min()):
        return torch.zeros_like(values)  # all equal: no signal (and no 0/0, no rounding noise)
    centred = torch.where(mask, values - real.mean(), torch.zeros_like(values))
    if not scale:
        return centred
    return centred / (real.std(unbiased=True) + eps)


def outcome_advantages(rewards: torch.Tensor, scale: bool = True, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Group-normalised outcome advantages.

    ``rewards`` is ``[num_questions, G]`` (one row per group) or ``[G]`` (one group). Returns a
    tensor of the same shape, one advantage per output; each row is normalised on its own.
    """
    if rewards.dim() == 1:
        return outcome_advantages(rewards.unsqueeze(0), scale=scale, eps=eps).squeeze(0)
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [G] or [num_questions, G], got shape {tuple(rewards.shape)}")
    return torch.stack([_normalise(row, None, scale, eps) for row in rewards])


def tokens_from_sequence_advantages(advantages: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Broadcast one advantage per output ``[N]`` to its completion tokens ``[N, T]`` (0 on padding)."""
    return advantages.to(torch.float32).unsqueeze(1) * completion_mask.to(torch.float32)


def normalise_step_rewards(
    step_rewards: torch.Tensor, step_mask: torch.Tensor, scale: bool = True, eps: float = DEFAULT_EPS
) -> torch.Tensor:
    """Normalise the step rewards of ONE group ``[G, S]`` by the mean and std of all its real steps.

    ``step_mask`` marks the real steps (outputs have different step counts); padded entries are 0.
    """
    return _normalise(step_rewards, step_mask, scale, eps)


def process_advantages(
    step_rewards: torch.Tensor,
    step_ends: torch.Tensor,
    step_mask: torch.Tensor,
    num_tokens: int,
    scale: bool = True,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """Per-token process-supervision advantages for ONE group of G outputs.

    Args:
        step_rewards: ``[G, S]`` reward of each step (padded).
        step_ends: ``[G, S]`` index (in the completion, 0-based) of the last token of each step.
        step_mask: ``[G, S]`` true for real steps.
        num_tokens: T, the completion length of the returned tensor.

    Returns ``[G, T]``: ``A[i, t] = sum over steps j of output i with step_ends[i, j] >= t of the
    normalised step reward``. Computed as a scatter of the rewards onto their end tokens followed
    by a reverse cumulative sum, O(G*T).
    """
    if step_rewards.shape != step_ends.shape or step_rewards.shape != step_mask.shape:
        raise ValueError("step_rewards, step_ends and step_mask must have the same [G, S] shape")
    mask = step_mask.to(torch.bool)
    if bool(((step_ends < 0) | (step_ends >= num_tokens))[mask].any()):
        raise ValueError(f"a step ends outside the completion (0..{num_tokens - 1})")
    normalised = normalise_step_rewards(step_rewards, mask, scale=scale, eps=eps)
    per_end = torch.zeros(step_rewards.shape[0], num_tokens, dtype=torch.float32)
    ends = torch.where(mask, step_ends, torch.zeros_like(step_ends)).long()
    per_end.scatter_add_(1, ends, torch.where(mask, normalised, torch.zeros_like(normalised)))
    return per_end.flip(1).cumsum(1).flip(1)


# ---------------------------------------------------------------- PPO (paper section 4.1.1)


def kl_penalised_rewards(
    outcome_rewards: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """PPO's per-token reward, the paper's equation (2): ``r_t = r(q, o_<=t) - beta * log(pi(o_t)/pi_ref(o_t))``.

    With an outcome reward, ``r(q, o_<=t)`` is 0 except at the last real token, where it is the
    outcome reward. ``logprobs`` are the sampling (old) policy's, no gradient. Returns ``[N, T]``,
    0 on padding.
    """
    mask = mask.to(torch.float32)
    rewards = -beta * (logprobs.float() - ref_logprobs.float()) * mask
    lengths = mask.sum(-1).long()
    rows = (lengths > 0).nonzero().squeeze(1)
    rewards[rows, lengths[rows] - 1] += outcome_rewards.float()[rows]
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each completion; returns ``(advantages, returns)`` ``[N, T]``.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` with ``V`` after the last real token taken as 0
    (the episode ends there), ``A_t = delta_t + gamma * lam * A_{t+1}``, and the value target
    ``R_t = A_t + V_t``. Completions are right-padded; padding positions get 0.
    """
    mask = mask.to(torch.float32)
    values = values.float() * mask
    rewards = rewards.float() * mask
    n, t_len = rewards.shape
    adv = torch.zeros_like(rewards)
    next_value = torch.zeros(n)
    next_adv = torch.zeros(n)
    for t in reversed(range(t_len)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        a = delta + gamma * lam * next_adv
        adv[:, t] = a * m
        next_value = torch.where(m > 0, values[:, t], torch.zeros(n))
        next_adv = torch.where(m > 0, a, torch.zeros(n))
    return adv, (adv + values) * mask


def whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries of the whole batch (PPO's advantage whitening)."""
    mask = mask.to(torch.bool)
    if int(mask.sum()) < 2:
        return torch.zeros_like(values)
    real = values[mask]
    return torch.where(mask, (values - real.mean()) / (real.std(unbiased=True) + eps), torch.zeros_like(values))
