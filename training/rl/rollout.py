"""The batch every policy-gradient method trains on: prompts, completions, rewards.

Layout (the one ``transformers.generate`` produces): prompts left-padded ``[N, P]``, completions
right-padded ``[N, T]``; the model reads ``prompt ++ completion`` with position ids counted from
the first real token, so left padding does not shift positions. ``completion_mask`` is 1 on the
real completion tokens, up to and including the first EOS.

The same structure holds offline data (SFT pairs, RFT samples: ``encode_pairs``) and online
policy samples (``training.rl.generation``), which is what lets one trainer run SFT, RFT,
online RFT and GRPO (the paper's section 5.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from training.rl.data import PromptResponse, Question, SkipCounter


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to ``[N, width]``; returns ``(ids, mask)``."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.as_tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def right_pad(
    rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists to ``[N, width]``; returns ``(ids, mask)``."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
            mask[i, : len(row)] = 1
    return ids, mask


def completion_mask_after_eos(
    completion_ids: torch.Tensor, eos_ids: Sequence[int], pad_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """1 on every token up to and including the first EOS of each row (all tokens when no EOS)."""
    is_eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for eos in eos_ids:
        is_eos |= completion_ids == eos
    seen_before = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    mask = (~seen_before).long()
    if pad_mask is not None:
        mask = mask * pad_mask.long()
    return mask


@dataclass
class Rollout:
    """A batch of N (prompt, completion) sequences with everything the loss needs.

    ``group`` numbers the question each row answers (rows of one group share a prompt);
    ``rewards`` ``[N]`` are outcome rewards, ``correct`` ``[N]`` whether the rule-based checker
    accepted the answer (None offline without gold); ``step_ends``/``step_rewards`` hold the
    process supervision of each row (lists, since step counts differ).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    group: torch.Tensor
    texts: list[str] = field(default_factory=list)
    questions: list[Question | None] = field(default_factory=list)
    rewards: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    step_ends: list[list[int]] | None = None
    step_rewards: list[list[float]] | None = None

    def __len__(self) -> int:
        return int(self.completion_ids.shape[0])

    @property
    def num_tokens(self) -> int:
        return int(self.completion_mask.sum())

    def select(self, index: Sequence[int] | torch.Tensor) -> Rollout:
        """The rows ``index`` as a new Rollout, with padding columns no row uses trimmed away."""
        idx = torch.as_tensor(list(index) if not isinstance(index, torch.Tensor) else index, dtype=torch.long)
        pick = [int(i) for i in idx]
        pm, cm = self.prompt_mask[idx], self.completion_mask[idx]
        p_keep = int(pm.sum(1).max()) if len(pick) else 0
        c_keep = int(cm.sum(1).max()) if len(pick) else 0
        width = self.prompt_mask.shape[1]
        return replace(
            self,
            prompt_ids=self.prompt_ids[idx][:, width - p_keep :],
            prompt_mask=pm[:, width - p_keep :],
            completion_ids=self.completion_ids[idx][:, :c_keep],
            completion_mask=cm[:, :c_keep],
            group=self.group[idx],
            texts=[self.texts[i] for i in pick] if self.texts else [],
            questions=[self.questions[i] for i in pick] if self.questions else [],
            rewards=None if self.rewards is None else self.rewards[idx],
            correct=None if self.correct is None else self.correct[idx],
            step_ends=None if self.step_ends is None else [self.step_ends[i] for i in pick],
            step_rewards=None if self.step_rewards is None else [self.step_rewards[i] for i in pick],
        )

    @staticmethod
    def concat(parts: Sequence[Rollout], pad_id: int) -> Rollout:
        """Stack Rollouts (re-padding prompts on the left and completions on the right); groups are renumbered 0, 1, ..."""
        if not parts:
            raise ValueError("nothing to concatenate")
        prompts, completions, groups = [], [], []
        offset = 0
        for part in parts:
            for i in range(len(part)):
                prompts.append(part.prompt_ids[i][part.prompt_mask[i].bool()].tolist())
                completions.append(part.completion_ids[i][part.completion_mask[i].bool()].tolist())
            uniq, inverse = torch.unique(part.group, return_inverse=True)
            groups.append(inverse + offset)
            offset += len(uniq)
        p_ids, p_mask = left_pad(prompts, pad_id)
        c_ids, c_mask = right_pad(completions, pad_id)

        def cat_opt(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else torch.cat(values)

        def list_opt(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else [x for v in values for x in v]

        return Rollout(
            prompt_ids=p_ids,
            prompt_mask=p_mask,
            completion_ids=c_ids,
            completion_mask=c_mask,
            group=torch.cat(groups),
            texts=[t for p in parts for t in p.texts],
            questions=[q for p in parts for q in p.questions],
            rewards=cat_opt("rewards"),
            correct=cat_opt("correct"),
            step_ends=list_opt("step_ends"),
            step_rewards=list_opt("step_rewards"),
        )


def response_text(prompt: str, response: str) -> str:
    """The response as it follows the prompt: a space is added after a prompt ending in a non-space
    character (``"Assistant:"`` -> ``"Assistant: 42"``, the layout of the plain chat template)."""
    if prompt and not prompt[-1].isspace() and response and not response[0].isspace():
        return " " + response
    return response


def encode_pairs(
    tokenizer,
    pairs: Sequence[PromptResponse],
    prompts: Sequence[str],
    max_prompt_tokens: int,
    max_response_tokens: int,
    skips: SkipCounter | None = None,
) -> Rollout:
    """Tokenise (prompt, response) pairs into a Rollout; the response gets the EOS token appended.

    ``prompts[i]`` is the rendered prompt of ``pairs[i]`` (chat template applied by the caller).
    A prompt longer than ``max_prompt_tokens`` is skipped (``prompt_too_long``); a response longer
    than ``max_response_tokens`` is cut (``response_truncated``, kept, without EOS).
    """
    skips = skips if skips is not None else SkipCounter()
    p_rows, c_rows, kept = [], [], []
    for pair, prompt in zip(pairs, prompts):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(response_text(prompt, pair.response), add_special_tokens=False)["input_ids"]
        c = c + [tokenizer.eos_token_id]
        if len(p) > max_prompt_tokens:
            skips["prompt_too_long"] += 1
            continue
        if len(c) > max_response_tokens:
            skips["response_truncated"] += 1
            c = c[:max_response_tokens]
        p_rows.append(p)
        c_rows.append(c)
        kept.append(pair)
    if not kept:
        raise ValueError("no usable (prompt, response) pair in this batch: " + str(skips.summary()))
    pad = tokenizer.pad_token_id
    p_ids, p_mask = left_pad(p_rows, pad)
    c_ids, c_mask = right_pad(c_rows, pad)
    questions = [
        Question(id=str(i), question=k.prompt, gold=k.gold, benchmark=k.benchmark) if k.gold else None
        for i, k in enumerate(kept)
    ]
    return Rollout(
        prompt_ids=p_ids,
        prompt_mask=p_mask,
        completion_ids=c_ids,
        completion_mask=c_mask,
        group=torch.arange(len(kept)),
        texts=[k.response for k in kept],
        questions=questions,
    )
