"""The offline data source of Table 10: samples of the initial (SFT) policy, drawn once before training.

Offline RFT and DPO train on outputs the SFT model produced, never on the current policy's
(that is what makes them offline, and what the paper's figure 5 compares with online RFT and
GRPO). ``OfflinePool.sample`` draws G outputs for each question from the initial policy and
scores them with the reward function; ``take`` then serves groups from that fixed pool in
shuffled passes. ``preference_pairs`` turns a group into DPO pairs: a correct and an incorrect
answer to the same question (Table 10: "correct vs incorrect answers").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from training.rl.data import Question
from training.rl.rollout import Rollout


class OfflinePool:
    """Scored groups of samples of a fixed policy; ``take(n)`` returns n groups as one Rollout."""

    def __init__(self, groups: Sequence[Rollout], pad_id: int, seed: int = 0) -> None:
        if not groups:
            raise ValueError("the offline pool is empty")
        self.groups, self.pad_id = list(groups), pad_id
        self._rng = random.Random(seed)
        self._order: list[int] = []
        self.epochs = 0

    @classmethod
    def sample(
        cls,
        sample_and_score: Callable[[Sequence[Question]], Rollout],
        questions: Sequence[Question],
        questions_per_call: int,
        pad_id: int,
        seed: int = 0,
    ) -> OfflinePool:
        """Sample and score every question (G outputs each) with ``sample_and_score``, in chunks."""
        groups = []
        step = max(questions_per_call, 1)
        for lo in range(0, len(questions), step):
            rollout = sample_and_score(questions[lo : lo + step])
            for g in torch.unique(rollout.group):
                groups.append(rollout.select((rollout.group == g).nonzero().squeeze(1)))
        return cls(groups, pad_id, seed)

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def accuracy(self) -> float:
        return float(torch.cat([g.rewards for g in self.groups]).float().mean())

    def take(self, n: int) -> Rollout:
        picked = []
        while len(picked) < n:
            if not self._order:
                self._order = list(range(len(self.groups)))
                self._rng.shuffle(self._order)
                self.epochs += 1
            picked.append(self.groups[self._order.pop()])
        return Rollout.concat(picked, self.pad_id)


def preference_pairs(correct: Sequence[bool], max_pairs: int, rng: random.Random) -> list[tuple[int, int]]:
    """Up to ``max_pairs`` (chosen, rejected) row pairs of one group: chosen correct, rejected incorrect.

    Every (correct, incorrect) combination is a candidate; a seeded random subset is kept. A
    group whose answers are all right or all wrong gives no pair.
    """
    good = [i for i, c in enumerate(correct) if c]
    bad = [i for i, c in enumerate(correct) if not c]
    combos = [(i, j) for i in good for j in bad]
    rng.shuffle(combos)
    return combos[: max(max_pairs, 0)]


class PairPool:
    """All DPO pairs of an offline pool; ``take(n)`` returns (chosen, rejected) Rollouts of n pairs."""

    def __init__(self, pool: OfflinePool, max_pairs_per_question: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.pool = pool
        self.pairs: list[tuple[int, int, int]] = []  # (group, chosen row, rejected row)
        for g, group in enumerate(pool.groups):
            for c, r in preference_pairs((group.rewards > 0.5).tolist(), max_pairs_per_question, rng):
                self.pairs.append((g, c, r))
        self._rng = rng
        self._order: list[int] = []
        self.epochs = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def take(self, n: int) -> tuple[Rollout, Rollout]:
        if not self.pairs:
            raise ValueError("no preference pair: no question has both a right and a wrong sample in the pool")
        chosen, rejected = [], []
        while len(chosen) < n:
            if not self._order:
                self._order = list(range(len(self.pairs)))
                self._rng.shuffle(self._order)
                self.epochs += 1
            g, c, r = self.pairs[self._order.pop()]
            group = self.pool.groups[g]
            chosen.append(group.select([c]))
            rejected.append(group.select([r]))
        pad = self.pool.pad_id
        return Rollout.concat(chosen, pad), Rollout.concat(rejected, pad)
