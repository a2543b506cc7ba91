"""Process reward model (PRM): a causal LM with a scalar head that scores the end of each reasoning step.

Model: ``AutoModelForTokenClassification`` with one label: the (causal) transformer of the policy
family plus a linear head giving one score per token. The score at a step's last token
(``training.rl.steps`` gives the rule) is that step's logit; ``sigmoid(logit)`` is the step reward
used for process supervision (the probability that the solution so far is still on a path to
the right answer, as in Math-Shepherd).

Training: binary cross-entropy of the step logits against 0/1 step labels, from either
- step-labelled data: ``{"prompt", "steps": [...], "labels": [...]}`` rows, or Math-Shepherd
  rows (``input`` with steps closed by ``"ки"`` and ``label`` with the tag replaced by ``+``/``-``);
- policy samples labelled by outcome (``examples_from_rollout``): a step is labelled good when
  some *correct* sample of the same question shares the whole prefix up to that step's end
  (so every step of a correct sample is good, and a wrong sample's steps are good only up to
  where it leaves every correct sample). This is Math-Shepherd's "hard estimation" restricted
  to the group's own samples; it costs no extra sampling.

Iterative RL (paper section 4.2): at each iteration the PRM is trained further on fresh policy
samples mixed with a replay of 10% of the historical data (``ReplayBuffer``). The history is a
bounded reservoir (``capacity`` examples) so memory stays flat on long runs; the 10% is taken of
the history's true size (capped by what the reservoir holds).

Departures: the paper's PRM follows Math-Shepherd (labels from completions rolled out from
each step); sampling those completions is not done here (``examples_from_rollout`` uses the
group's own samples instead). The paper's reward-model learning rate (2e-5) is the default.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from training.rl.logprobs import position_ids_from_mask
from training.rl.rollout import Rollout, left_pad, response_text, right_pad
from training.rl.steps import TokenTexts, step_ends_from_ids

MATH_SHEPHERD_TAG = "ки"


@dataclass(frozen=True)
class PRMExample:
    """One scored sequence: prompt tokens, completion tokens, the completion index of each step end, 0/1 labels."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    step_ends: tuple[int, ...]
    labels: tuple[float, ...]


def examples_from_steps(
    tokenizer, prompt: str, steps: Sequence[str], labels: Sequence[float | int | bool | str], separator: str = "\n"
) -> PRMExample:
    """A PRMExample from a prompt and a list of step texts with labels (``1``/``0``, ``True``/``False``, ``+``/``-``).

    The steps are joined with ``separator`` (a newline, which the step rule also uses), each
    step is tokenised on its own, so its last token is exactly the step's end.
    """
    if len(steps) != len(labels) or not steps:
        raise ValueError(f"need one label per step and at least one step, got {len(steps)} steps, {len(labels)} labels")
    completion: list[int] = []
    ends: list[int] = []
    for k, step in enumerate(steps):
        text = step if k == len(steps) - 1 else step + separator
        text = response_text(prompt, text) if k == 0 else text
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"step {k} is empty")
        completion.extend(ids)
        ends.append(len(completion) - 1)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return PRMExample(tuple(prompt_ids), tuple(completion), tuple(ends), tuple(_label(v) for v in labels))


def _label(value) -> float:
    if isinstance(value, str):
        if value.strip() in ("+", "1", "true", "True"):
            return 1.0
        if value.strip() in ("-", "0", "false", "False"):
            return 0.0
        raise ValueError(f"unknown step label {value!r}")
    return 1.0 if float(value) > 0.5 else 0.0


def parse_math_shepherd(row: dict) -> tuple[str, list[str], list[str]]:
    """(question, steps, labels) from a Math-Shepherd row (``input`` tagged with ``ки``, ``label`` with ``+``/``-``)."""
    text, labelled = row["input"], row["label"]
    pieces = text.split(MATH_SHEPHERD_TAG)
    steps_raw, labels = [], []
    cursor = 0
    for piece in pieces[:-1]:
        cursor += len(piece)
        labels.append(labelled[cursor : cursor + 1])
        cursor += 1
        steps_raw.append(piece)
    if not steps_raw:
        raise ValueError("no tagged step in the Math-Shepherd row")
    # The question is everything before the first "Step 1:" (Math-Shepherd's layout), else the first line.
    first = steps_raw[0]
    split_at = first.find("Step 1:")
    if split_at < 0:
        split_at = first.find("\n") + 1
    question = first[:split_at].strip()
    steps_raw[0] = first[split_at:]
    return question, [s.strip() for s in steps_raw], labels


def examples_from_rows(tokenizer, rows: Iterable[dict], prompt_fn=lambda q: q) -> list[PRMExample]:
    """PRM examples from step-labelled rows: ``{"prompt", "steps", "labels"}`` or Math-Shepherd ``{"input", "label"}``."""
    out = []
    for row in rows:
        if "steps" in row:
            prompt, steps, labels = row.get("prompt") or row.get("question"), row["steps"], row["labels"]
        else:
            prompt, steps, labels = parse_math_shepherd(row)
        out.append(examples_from_steps(tokenizer, prompt_fn(prompt), steps, labels))
    return out


def step_labels_by_shared_prefix(
    completions: Sequence[Sequence[int]], step_ends: Sequence[Sequence[int]], correct: Sequence[bool]
) -> list[list[float]]:
    """Outcome-derived step labels for ONE group: step j of sample i is good (1.0) when some correct
    sample of the group has the same tokens up to and including that step's end."""
    good_prefixes = set()
    for comp, ends, ok in zip(completions, step_ends, correct):
        if ok:
            good_prefixes.update(tuple(comp[: e + 1]) for e in ends)
    return [
        [1.0 if tuple(comp[: e + 1]) in good_prefixes else 0.0 for e in ends]
        for comp, ends in zip(completions, step_ends)
    ]


def add_step_ends(rollout: Rollout, tokenizer, token_text: TokenTexts | None = None) -> Rollout:
    """Fill ``rollout.step_ends`` with the step rule of ``training.rl.steps``."""
    token_text = token_text or TokenTexts(tokenizer)
    rollout.step_ends = [
        step_ends_from_ids(rollout.completion_ids[i][rollout.completion_mask[i].bool()].tolist(), token_text)
        for i in range(len(rollout))
    ]
    return rollout


def examples_from_rollout(rollout: Rollout) -> list[PRMExample]:
    """PRM training examples from policy samples labelled by outcome (``rollout.correct`` and ``step_ends`` set)."""
    if rollout.correct is None or rollout.step_ends is None:
        raise ValueError("the rollout needs `correct` and `step_ends` to label steps by outcome")
    out = []
    for g in torch.unique(rollout.group).tolist():
        rows = (rollout.group == g).nonzero().squeeze(1).tolist()
        comps = [rollout.completion_ids[r][rollout.completion_mask[r].bool()].tolist() for r in rows]
        prompts = [tuple(rollout.prompt_ids[r][rollout.prompt_mask[r].bool()].tolist()) for r in rows]
        ends = [rollout.step_ends[r] for r in rows]
        labels = step_labels_by_shared_prefix(comps, ends, [bool(rollout.correct[r]) for r in rows])
        for p, c, e, lab in zip(prompts, comps, ends, labels):
            if e:
                out.append(PRMExample(p, tuple(c), tuple(e), tuple(lab)))
    return out


class ReplayBuffer:
    """History of PRM examples; ``mix(fresh)`` = fresh + a random ``fraction`` of the history (paper: 10%)."""

    def __init__(self, fraction: float = 0.1, capacity: int = 200_000, seed: int = 0) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("replay fraction must be in [0, 1]")
        self.fraction, self.capacity = fraction, capacity
        self.items: list[PRMExample] = []
        self.seen = 0
        self._rng = random.Random(seed)

    def mix(self, fresh: Sequence[PRMExample]) -> list[PRMExample]:
        want = min(len(self.items), round(self.fraction * self.seen))
        return list(fresh) + self._rng.sample(self.items, want)

    def add(self, examples: Iterable[PRMExample]) -> None:
        for ex in examples:  # reservoir sampling keeps a uniform sample of everything seen
            self.seen += 1
            if len(self.items) < self.capacity:
                self.items.append(ex)
            else:
                j = self._rng.randrange(self.seen)
                if j < self.capacity:
                    self.items[j] = ex


def _collate(examples: Sequence[PRMExample], pad_id: int):
    p_ids, p_mask = left_pad([e.prompt_ids for e in examples], pad_id)
    c_ids, c_mask = right_pad([e.completion_ids for e in examples], pad_id)
    return p_ids, p_mask, c_ids, c_mask


class ProcessRewardModel:
    """A token-classification LM (one label) scoring step ends; ``score`` gives step rewards, ``fit`` trains it."""

    def __init__(self, model, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id

    @classmethod
    def from_pretrained(cls, path: str, pad_id: int) -> ProcessRewardModel:
        """A PRM from a checkpoint folder: a saved PRM, or a causal LM whose body is reused (new head)."""
        from transformers import AutoModelForTokenClassification

        model = AutoModelForTokenClassification.from_pretrained(path, num_labels=1, local_files_only=True)
        return cls(model, pad_id)

    @classmethod
    def from_policy(cls, policy, pad_id: int, seed: int = 0) -> ProcessRewardModel:
        """A PRM whose transformer body is a copy of the (in-memory) policy's, with a fresh scalar head."""
        from transformers import AutoModelForTokenClassification

        torch.manual_seed(seed)
        config = policy.config.__class__.from_dict(policy.config.to_dict())
        config.num_labels = 1
        model = AutoModelForTokenClassification.from_config(config)
        body = getattr(model, model.base_model_prefix)
        body.load_state_dict(getattr(policy, policy.base_model_prefix).state_dict())
        return cls(model.to(next(policy.parameters()).device), pad_id)

    def _step_logits(self, examples: Sequence[PRMExample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        p_ids, p_mask, c_ids, c_mask = _collate(examples, self.pad_id)
        ids = torch.cat([p_ids, c_ids], 1).to(device)
        attn = torch.cat([p_mask, c_mask], 1).to(device)
        logits = self.model(input_ids=ids, attention_mask=attn, position_ids=position_ids_from_mask(attn)).logits
        logits = logits[:, p_ids.shape[1] :, 0]
        width = max(len(e.step_ends) for e in examples)
        ends = torch.zeros(len(examples), width, dtype=torch.long)
        labels = torch.zeros(len(examples), width)
        mask = torch.zeros(len(examples), width, dtype=torch.bool)
        for i, e in enumerate(examples):
            n = len(e.step_ends)
            ends[i, :n] = torch.as_tensor(e.step_ends)
            mask[i, :n] = True
            if e.labels:
                labels[i, :n] = torch.as_tensor(e.labels)
        return torch.gather(logits, 1, ends.to(device)), labels.to(device), mask.to(device)

    @torch.no_grad()
    def score(self, rollout: Rollout, micro_batch_size: int = 16) -> list[list[float]]:
        """Step rewards (sigmoid of the step-end logits) for each row of a rollout with ``step_ends`` set."""
        if rollout.step_ends is None:
            raise ValueError("set rollout.step_ends first (add_step_ends)")
        was = self.model.training
        self.model.eval()
        out: list[list[float]] = []
        try:
            for lo in range(0, len(rollout), micro_batch_size):
                rows = range(lo, min(lo + micro_batch_size, len(rollout)))
                exs = [
                    PRMExample(
                        tuple(rollout.prompt_ids[r][rollout.prompt_mask[r].bool()].tolist()),
                        tuple(rollout.completion_ids[r][rollout.completion_mask[r].bool()].tolist()),
                        tuple(rollout.step_ends[r]),
                        (),
                    )
                    for r in rows
                ]
                with_steps = [e for e in exs if e.step_ends]
                probs = torch.sigmoid(self._step_logits(with_steps)[0]).cpu() if with_steps else None
                k = 0
                for e in exs:
                    if e.step_ends:
                        out.append(probs[k, : len(e.step_ends)].tolist())
                        k += 1
                    else:
                        out.append([])
        finally:
            self.model.train(was)
        return out

    def loss(self, examples: Sequence[PRMExample]) -> torch.Tensor:
        """Mean binary cross-entropy over the real steps of ``examples``."""
        logits, labels, mask = self._step_logits(examples)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        return (bce * mask).sum() / mask.sum().clamp(min=1)

    def fit(
        self,
        examples: Sequence[PRMExample],
        optimizer,
        epochs: int = 1,
        batch_size: int = 16,
        micro_batch_size: int = 16,
        seed: int = 0,
        grad_clip: float = 1.0,
    ) -> dict[str, float]:
        """Train on ``examples`` for ``epochs``; returns the mean loss of the first and last epoch and the step accuracy."""
        if not examples:
            return {"prm_examples": 0.0}
        rng = random.Random(seed)
        order = list(range(len(examples)))
        self.model.train()
        epoch_losses = []
        for _ in range(max(1, epochs)):
            rng.shuffle(order)
            total, batches = 0.0, 0
            for lo in range(0, len(order), batch_size):
                batch = [examples[i] for i in order[lo : lo + batch_size]]
                optimizer.zero_grad(set_to_none=True)
                steps_in_batch = sum(len(e.step_ends) for e in batch)
                value = 0.0
                for mlo in range(0, len(batch), micro_batch_size):
                    micro = batch[mlo : mlo + micro_batch_size]
                    part = self.loss(micro) * (sum(len(e.step_ends) for e in micro) / steps_in_batch)
                    part.backward()
                    value += float(part.detach())
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
                optimizer.step()
                total += value
                batches += 1
            epoch_losses.append(total / max(batches, 1))
        return {
            "prm_examples": float(len(examples)),
            "prm_loss_first_epoch": epoch_losses[0],
            "prm_loss_last_epoch": epoch_losses[-1],
            "prm_step_accuracy": self.step_accuracy(examples),
        }

    @torch.no_grad()
    def step_accuracy(self, examples: Sequence[PRMExample], micro_batch_size: int = 32) -> float:
        """Share of steps whose predicted label (logit > 0) matches the given label."""
        hits, count = 0, 0
        was = self.model.training
        self.model.eval()
        try:
            for lo in range(0, len(examples), micro_batch_size):
                logits, labels, mask = self._step_logits(examples[lo : lo + micro_batch_size])
                hits += int((((logits > 0).float() == labels) & mask).sum())
                count += int(mask.sum())
        finally:
            self.model.train(was)
        return hits / max(count, 1)

    def save(self, directory: str, tokenizer=None) -> None:
        from training.modeling import save_model

        save_model(self.model, tokenizer, directory)
