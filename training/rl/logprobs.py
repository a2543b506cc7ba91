"""Per-token log-probabilities of completions under a causal LM (one forward pass, no sampling).

The model reads ``prompt ++ completion`` (prompt left-padded, completion right-padded) with
position ids counted from each row's first real token (as ``generate`` does), and only the
logits of the completion positions are materialised (``logits_to_keep``), so the ``[N, T, V]``
tensor is the only vocabulary-sized one. ``temperature`` divides the logits as the sampler did,
so ratios and KL are measured on the sampling distribution (as TRL does).
"""

from __future__ import annotations

import torch


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[..., index]`` without materialising the full log-softmax tensor."""
    logits = logits.float()
    picked = torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token (0 on left padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def completion_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``[N, T]`` log pi(completion_t | prompt, completion_<t); padding positions hold garbage (mask them)."""
    device = next(model.parameters()).device
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1).to(device)
    attention = torch.cat([prompt_mask, completion_mask], dim=1).to(device)
    num_completion = completion_ids.shape[1]
    kwargs = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "position_ids": position_ids_from_mask(attention),
        "use_cache": False,
    }
    try:
        logits = model(**kwargs, logits_to_keep=num_completion + 1).logits
    except TypeError:  # a model without logits_to_keep
        logits = model(**kwargs).logits[:, -(num_completion + 1) :]
    logits = logits[:, :-1]
    if temperature != 1.0:
        logits = logits / temperature
    return selective_log_softmax(logits, completion_ids.to(device))
