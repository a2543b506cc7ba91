"""Pluggable outcome reward functions.

A reward function maps ``(completions, questions)`` to one float per completion. The default,
``RuleReward``, is the paper's rule-based check: extract the final answer (last ``\\boxed{}``
with brace matching, then "The answer is"/"####" fallbacks) and compare it with the gold
answer (numbers, fractions, LaTeX forms), all through ``training.answers`` so the rewards and
the evaluation harness agree. That checker uses no ``signal.alarm`` and is safe in threads and
worker processes; ``num_workers > 0`` spreads the checks over a process pool.

Any other function is plugged in by name: ``"module.path:function"`` with the same signature.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from training.rl.data import Question

RewardFn = Callable[[Sequence[str], Sequence[Question]], list[float]]


def _one_reward(args: tuple[str, str, str]) -> float:
    from training.answers import math_reward

    completion, gold, benchmark = args
    return math_reward(completion, gold, benchmark)


class RuleReward:
    """1.0 when the completion's final answer equals the question's gold answer, else 0.0."""

    def __init__(self, num_workers: int = 0) -> None:
        self.num_workers = num_workers
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, completions: Sequence[str], questions: Sequence[Question]) -> list[float]:
        jobs = [(c, q.gold, q.benchmark) for c, q in zip(completions, questions)]
        if self.num_workers <= 0 or len(jobs) < 2 * self.num_workers:
            return [_one_reward(j) for j in jobs]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.num_workers)
        return list(self._pool.map(_one_reward, jobs, chunksize=max(1, len(jobs) // (4 * self.num_workers))))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def load_reward(name: str, num_workers: int = 0) -> RewardFn:
    """``"math"`` (the rule-based checker) or ``"package.module:function"``."""
    if name in ("math", "rule", "answer"):
        return RuleReward(num_workers)
    if ":" not in name:
        raise ValueError(f"unknown reward {name!r}: use 'math' or 'package.module:function'")
    module, attr = name.split(":", 1)
    fn = getattr(importlib.import_module(module), attr)
    if not callable(fn):
        raise TypeError(f"reward {name!r} is not callable")
    return fn
