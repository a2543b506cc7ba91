"""The GRPO objective as small pure functions (DeepSeekMath section 4.1, equation 3).

Per token t of output i (written as a loss, to be minimised):

    ratio  = pi_theta(o_t) / pi_old(o_t)
    pg     = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)
    kl     = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1         (unbiased, always >= 0)
    loss_t = pg + beta * kl                                      (KL in the loss, not the reward)

then reduced over the batch by one of:

- ``"grpo"`` (the paper): mean over the tokens of each output, then mean over the outputs
  (``1/G sum_i 1/|o_i| sum_t``);
- ``"token"`` (DAPO; TRL's ``bnpo``/``dapo``): sum over all tokens / number of tokens;
- ``"dr_grpo"`` (Dr. GRPO): sum over all tokens / (number of outputs * max completion length).

The same surrogate is the *unified* policy-gradient loss of the paper's section 5.2.1: with
``pi_old = pi_theta`` detached (mu = 1, or SFT/RFT where no old policy exists) the gradient of
``-ratio * A`` is ``-A * grad log pi_theta``, so A is exactly the paper's gradient coefficient
(1 for SFT, the 0/1 reward for RFT, the normalised advantage for GRPO).

Micro-batching: ``reduce_loss`` takes the *whole batch's* normalisers (number of outputs,
number of tokens), so the losses of the micro-batches add up to the loss of the full batch and
gradient accumulation gives the same gradient as one big batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_TYPES = ("grpo", "token", "dr_grpo")


def per_token_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """The unbiased per-token KL estimator ``pi_ref/pi - log(pi_ref/pi) - 1`` from log-probabilities."""
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1.0


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_eps: float,
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token ``-min(ratio*A, clip(ratio, 1-eps, 1+eps_high)*A)`` and a 0/1 tensor of clipped tokens.

    ``clip_eps_high`` (DAPO's clip-higher; default: ``clip_eps``, the paper's symmetric clip)
    widens the upper bound only, so low-probability tokens with a positive advantage can grow
    further before their gradient is cut. A token counts as clipped when the clipped branch is
    the smaller one, i.e. its gradient is 0.
    """
    high = clip_eps if clip_eps_high is None else clip_eps_high
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high) * advantages
    was_clipped = (clipped < unclipped).to(logprobs.dtype)
    return -torch.minimum(unclipped, clipped), was_clipped


def reduce_loss(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    num_sequences: int | None = None,
    num_tokens: float | None = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """Reduce ``[N, T]`` per-token values to a scalar, with the normalisers of the whole batch.

    ``num_sequences``/``num_tokens`` default to this tensor's own (one micro-batch == the batch);
    ``max_length`` (for ``dr_grpo``) defaults to T.
    """
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    if loss_type == "grpo":
        n = num_sequences if num_sequences is not None else per_token.shape[0]
        lengths = mask.sum(-1).clamp(min=1.0)
        return (masked.sum(-1) / lengths).sum() / max(n, 1)
    if loss_type == "token":
        total = num_tokens if num_tokens is not None else mask.sum()
        return masked.sum() / max(float(total), 1.0)
    if loss_type == "dr_grpo":
        n = num_sequences if num_sequences is not None else per_token.shape[0]
        length = max_length if max_length is not None else per_token.shape[1]
        return masked.sum() / max(n * length, 1)
    raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")


@dataclass(frozen=True)
class LossParts:
    """The scalar loss and the statistics logged next to it (all reduced like the loss)."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_fraction: torch.Tensor


def policy_gradient_loss(
    logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    old_logprobs: torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.04,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    loss_type: str = "grpo",
    num_sequences: int | None = None,
    num_tokens: float | None = None,
    max_length: int | None = None,
) -> LossParts:
    """The GRPO loss (clipped surrogate + beta * KL) for one (micro-)batch of ``[N, T]`` tensors.

    ``old_logprobs=None`` means pi_old = pi_theta (mu = 1): the current log-probs, detached, so no
    extra forward pass is needed. ``ref_logprobs=None`` or ``beta == 0`` drops the KL term.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")
    old = logprobs.detach() if old_logprobs is None else old_logprobs
    pg, clipped = clipped_surrogate(logprobs, old, advantages, clip_eps, clip_eps_high)
    norm = {"loss_type": loss_type, "num_sequences": num_sequences, "num_tokens": num_tokens, "max_length": max_length}
    policy = reduce_loss(pg, mask, **norm)
    if ref_logprobs is not None and beta != 0.0:
        kl_tok = per_token_kl(logprobs, ref_logprobs)
        kl = reduce_loss(kl_tok, mask, **norm)
        loss = reduce_loss(pg + beta * kl_tok, mask, **norm)
    else:
        kl = torch.zeros((), dtype=logprobs.dtype)
        loss = policy
    clip_fraction = reduce_loss(clipped, mask, **norm)
    return LossParts(loss=loss, policy_loss=policy.detach(), kl=kl.detach(), clip_fraction=clip_fraction.detach())


# ---------------------------------------------------------------- PPO's value loss


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    loss_type: str = "grpo",
    num_sequences: int | None = None,
    num_tokens: float | None = None,
    max_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss ``0.5 * max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)``.

    Reduced over the masked tokens like the policy loss; returns ``(loss, clip_fraction)``, a
    token counting as clipped when the clipped branch is the larger one. ``clip_eps <= 0``
    turns clipping off (plain squared error).
    """
    unclipped = (values - returns) ** 2
    if clip_eps > 0:
        clipped_v = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
        clipped = (clipped_v - returns) ** 2
        per_token = 0.5 * torch.maximum(unclipped, clipped)
        was_clipped = (clipped > unclipped).to(values.dtype)
    else:
        per_token = 0.5 * unclipped
        was_clipped = torch.zeros_like(values)
    norm = {"loss_type": loss_type, "num_sequences": num_sequences, "num_tokens": num_tokens, "max_length": max_length}
    return reduce_loss(per_token, mask, **norm), reduce_loss(was_clipped, mask, **norm).detach()


# ---------------------------------------------------------------- DPO (paper appendix A.1.3)


def sequence_logprob(logprobs: torch.Tensor, mask: torch.Tensor, length_normalise: bool = True) -> torch.Tensor:
    """``[N]`` log-probability of each completion: the mean over its tokens (``1/|o| sum_t``, the
    paper's A.1.3) or, with ``length_normalise=False``, the sum (the original DPO and TRL)."""
    mask = mask.to(logprobs.dtype)
    total = (logprobs * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1.0) if length_normalise else total


def dpo_margin(
    chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor
) -> torch.Tensor:
    """``m = log pi(o+)/pi_ref(o+) - log pi(o-)/pi_ref(o-)`` per pair, from ``[P]`` sequence log-probs."""
    return (chosen - ref_chosen) - (rejected - ref_rejected)


def dpo_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    num_pairs: int | None = None,
) -> torch.Tensor:
    """The DPO loss ``-mean log sigmoid(beta * m)`` over pairs (``num_pairs``: the whole batch's
    count, so micro-batch losses add up to the batch loss)."""
    margin = dpo_margin(chosen, rejected, ref_chosen, ref_rejected)
    n = num_pairs if num_pairs is not None else margin.shape[0]
    return -torch.nn.functional.logsigmoid(beta * margin).sum() / max(n, 1)


def dpo_gradient_coefficient(margin: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """The paper's A.1.3 gradient coefficient ``GC_DPO = sigmoid(beta * (log pi(o-)/pi_ref(o-) -
    log pi(o+)/pi_ref(o+))) = sigmoid(-beta * m)``, one per pair.

    The gradient of ``log sigmoid(beta * m)`` is ``beta * GC_DPO * grad m``: each token of the
    chosen answer is pushed up with weight ``beta * GC / |o+|``, each token of the rejected one
    down with ``beta * GC / |o-|``. The paper folds the constant beta into the learning rate.
    The coefficient is large when the policy still prefers the wrong answer, and tends to 0 as
    the margin grows: pairs already separated stop contributing.
    """
    return torch.sigmoid(-beta * margin)
