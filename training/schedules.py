"""Learning-rate schedules as pure functions of the step, plus a torch ``LambdaLR`` wrapper.

Every schedule is a *multiplier* of the peak learning rate, ``factor(step) in [0, 1]``, for the
optimiser step ``step`` (0-based: ``step`` updates have been applied before it).

- ``multistep`` (the DeepSeekMath paper, sections 2.2 and 2.3): linear warm-up to the peak over
  ``warmup_steps`` steps, then the peak until 80% of the total steps, then 31.6% of the peak,
  and 10% of the peak from 90% of the total steps on.
- ``cosine``: the same warm-up, then a half cosine from the peak down to ``min_ratio`` of it at
  the last step.
- ``constant``: the same warm-up, then the peak (the paper's SFT setting uses it without warm-up).

Departures from the paper: the paper does not say how the warm-up ramps or exactly where a step
falls relative to a milestone. Here warm-up is linear with ``factor = (step + 1) / warmup_steps``
(never zero, so the first update is not wasted, and exactly the peak at the last warm-up step
``warmup_steps - 1``), and a milestone at fraction ``m`` applies to every step with
``step >= m * total_steps``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

SCHEDULES = ("multistep", "cosine", "constant")
PAPER_MILESTONES = (0.8, 0.9)
PAPER_FACTORS = (0.316, 0.1)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: ``(step + 1) / warmup_steps`` during warm-up, 1.0 after it (and with none)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps


def multistep_factor(step: int, total_steps: int, warmup_steps: int,
                     milestones: Sequence[float] = PAPER_MILESTONES,
                     factors: Sequence[float] = PAPER_FACTORS) -> float:
    """The paper's schedule: warm-up, peak, then ``factors[i]`` from ``milestones[i] * total_steps`` on."""
    if len(milestones) != len(factors):
        raise ValueError("milestones and factors must have the same length")
    factor = warmup_factor(step, warmup_steps)
    if step < warmup_steps:
        return factor
    for milestone, value in zip(milestones, factors):
        if step >= milestone * total_steps:
            factor = value
    return factor


def cosine_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.1) -> float:
    """Warm-up, then a half cosine from 1.0 at ``warmup_steps`` to ``min_ratio`` at ``total_steps - 1``."""
    if step < warmup_steps:
        return warmup_factor(step, warmup_steps)
    span = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def constant_factor(step: int, warmup_steps: int) -> float:
    """Warm-up, then 1.0."""
    return warmup_factor(step, warmup_steps)


def lr_factor(name: str, step: int, total_steps: int, warmup_steps: int,
              milestones: Sequence[float] = PAPER_MILESTONES, factors: Sequence[float] = PAPER_FACTORS,
              min_ratio: float = 0.1) -> float:
    """The multiplier of schedule ``name`` (one of ``SCHEDULES``) at ``step``."""
    if name == "multistep":
        return multistep_factor(step, total_steps, warmup_steps, milestones, factors)
    if name == "cosine":
        return cosine_factor(step, total_steps, warmup_steps, min_ratio)
    if name == "constant":
        return constant_factor(step, warmup_steps)
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def make_scheduler(optimizer, name: str, total_steps: int, warmup_steps: int,
                   milestones: Sequence[float] = PAPER_MILESTONES, factors: Sequence[float] = PAPER_FACTORS,
                   min_ratio: float = 0.1):
    """A ``torch.optim.lr_scheduler.LambdaLR`` following ``lr_factor`` (call ``.step()`` after each update)."""
    from torch.optim.lr_scheduler import LambdaLR

    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    milestones, factors = tuple(milestones), tuple(factors)
    return LambdaLR(optimizer, lambda step: lr_factor(name, step, total_steps, warmup_steps,
                                                      milestones, factors, min_ratio))
