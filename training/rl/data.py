"""Training data for the policy-gradient jobs: questions with gold answers, and (prompt, response) pairs.

- ``read_records`` reads JSON lines (``.jsonl``, ``.jsonl.gz``, ``.json``) or Parquet files, from
  a path, a folder or a glob (local paths, or any fsspec URL when fsspec can open it).
- ``to_question`` converts one benchmark-style row into a ``Question`` with converters for GSM8K
  (``question`` + ``answer`` ending in ``#### n``), MATH (``problem`` + ``solution`` with a
  ``\\boxed{}``), CMATH (``question`` + ``golden``) and a generic ``question``/``answer`` layout;
  ``"auto"`` picks the converter from the row's keys. Gold answers come from
  ``training.answers.gold_answer`` (the same code as the evaluation harness).
- Rows that cannot be used (no question, no gold answer, prompt too long) are skipped and
  counted by reason in a ``SkipCounter`` that the jobs write into their summary; nothing is
  dropped silently.
- ``build_prompt`` wraps a question in the DeepSeekMath-Instruct chain-of-thought prompt
  (question, newline, "Please reason step by step, and put your final answer within
  \\boxed{}."), through the tokenizer's chat template when it has one.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

COT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
FORMATS = ("auto", "gsm8k", "math", "cmath", "generic")


@dataclass(frozen=True)
class Question:
    """One RL prompt: the question text, its gold final answer, and the benchmark whose rules check it."""

    id: str
    question: str
    gold: str
    benchmark: str = "math"


@dataclass(frozen=True)
class PromptResponse:
    """One supervised example (SFT, offline RFT): prompt text and response text; ``gold`` for RFT."""

    prompt: str
    response: str
    gold: str | None = None
    benchmark: str = "math"


class SkipCounter(Counter):
    """Counts of skipped rows by reason (``Counter`` with a readable ``summary``)."""

    def summary(self) -> dict[str, int]:
        return dict(sorted(self.items()))


def _expand(path: str) -> list[str]:
    if "://" in path:
        import fsspec

        _fs, _, paths = fsspec.get_fs_token_paths(path)
        files = sorted(paths) if any(ch in path for ch in "*?[") else [path]
        return files
    if os.path.isdir(path):
        files = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names
            if name.endswith((".jsonl", ".jsonl.gz", ".json", ".parquet"))
        )
    else:
        files = sorted(glob.glob(path)) if any(ch in path for ch in "*?[") else [path]
    if not files:
        raise FileNotFoundError(f"no data files match {path!r}")
    return files


def _open_binary(path: str):
    if "://" in path:
        import fsspec

        return fsspec.open(path, "rb").open()
    return open(path, "rb")


def read_records(path: str, skips: SkipCounter | None = None) -> Iterator[dict]:
    """Yield the rows of JSON-lines or Parquet files at ``path`` (file, folder or glob) as dicts.

    A JSON line that does not parse is skipped and counted as ``bad_json`` (with ``skips``) rather
    than failing the job.
    """
    for file in _expand(path):
        if file.endswith(".parquet"):
            import pyarrow.parquet as pq

            with _open_binary(file) as fh:
                table = pq.read_table(fh)
            yield from table.to_pylist()
            continue
        with _open_binary(file) as raw:
            stream = gzip.GzipFile(fileobj=raw) if file.endswith(".gz") else raw
            text = io.TextIOWrapper(stream, encoding="utf-8")
            if file.endswith(".json") and not file.endswith(".jsonl"):
                data = json.load(text)
                yield from (data if isinstance(data, list) else [data])
                continue
            for line in text:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    if skips is not None:
                        skips["bad_json"] += 1
                    continue
                if isinstance(row, dict):
                    yield row
                elif skips is not None:
                    skips["not_an_object"] += 1


def detect_format(row: dict) -> str:
    """Which converter fits a row: ``math`` (problem+solution), ``cmath`` (golden), ``gsm8k`` (#### answer), else generic."""
    if "problem" in row and "solution" in row:
        return "math"
    if "golden" in row:
        return "cmath"
    if "question" in row and isinstance(row.get("answer"), str) and "####" in row["answer"]:
        return "gsm8k"
    return "generic"


def to_question(
    row: dict,
    fmt: str = "auto",
    index: int = 0,
    benchmark: str | None = None,
    question_field: str = "question",
    answer_field: str = "answer",
) -> Question | str:
    """A ``Question`` from one row, or the reason (a string) why the row cannot be used."""
    from training.answers import gold_answer

    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; expected one of {FORMATS}")
    kind = detect_format(row) if fmt == "auto" else fmt
    if kind == "math":
        text, gold, bench = row.get("problem"), gold_answer(row, "math"), "math"
    elif kind == "cmath":
        text, gold, bench = row.get("question"), gold_answer(row, "cmath"), "cmath"
    elif kind == "gsm8k":
        text, gold, bench = row.get("question"), gold_answer(row, "gsm8k"), "gsm8k"
    else:
        text, gold, bench = row.get(question_field), row.get(answer_field), benchmark or "math"
        gold = None if gold is None else str(gold).strip() or None
    if not text or not str(text).strip():
        return "no_question"
    if gold is None:
        return "no_gold_answer"
    ident = str(row.get("id", row.get("unique_id", index)))
    return Question(id=ident, question=str(text).strip(), gold=str(gold), benchmark=benchmark or bench)


def load_questions(
    path: str,
    fmt: str = "auto",
    limit: int | None = None,
    benchmark: str | None = None,
    skips: SkipCounter | None = None,
    question_field: str = "question",
    answer_field: str = "answer",
) -> list[Question]:
    """All usable questions of ``path`` (at most ``limit``); unusable rows are counted in ``skips``."""
    skips = skips if skips is not None else SkipCounter()
    out: list[Question] = []
    for i, row in enumerate(read_records(path, skips)):
        item = to_question(row, fmt, i, benchmark, question_field, answer_field)
        if isinstance(item, str):
            skips[item] += 1
            continue
        out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


def load_pairs(
    path: str,
    prompt_field: str = "prompt",
    response_field: str = "response",
    gold_field: str = "gold",
    benchmark: str = "math",
    limit: int | None = None,
    skips: SkipCounter | None = None,
) -> list[PromptResponse]:
    """(prompt, response[, gold]) pairs for SFT or offline RFT; rows missing either text are counted in ``skips``.

    Chat-style rows (``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}``) are
    accepted too: the last user turn is the prompt and the assistant turn after it the response.
    """
    skips = skips if skips is not None else SkipCounter()
    out: list[PromptResponse] = []
    for row in read_records(path, skips):
        prompt, response = row.get(prompt_field), row.get(response_field)
        if (prompt is None or response is None) and isinstance(row.get("messages"), list):
            prompt, response = _from_messages(row["messages"])
        if not prompt or not str(prompt).strip():
            skips["no_prompt"] += 1
            continue
        if not response or not str(response).strip():
            skips["no_response"] += 1
            continue
        gold = row.get(gold_field)
        out.append(PromptResponse(str(prompt), str(response), None if gold is None else str(gold), benchmark))
        if limit is not None and len(out) >= limit:
            break
    return out


def _from_messages(messages: list) -> tuple[str | None, str | None]:
    prompt = response = None
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if msg.get("role") == "user":
            prompt, response = msg.get("content"), None
        elif msg.get("role") == "assistant" and prompt is not None and response is None:
            response = msg.get("content")
    return prompt, response


def build_prompt(
    question: str, tokenizer=None, use_chat_template: bool = True, instruction: str | None = COT_INSTRUCTION
) -> str:
    """The text the policy continues: the question plus the CoT instruction, as a chat turn when possible.

    With a tokenizer that has a chat template (and ``use_chat_template``), the user turn is
    rendered with ``add_generation_prompt=True``; otherwise the plain DeepSeekMath layout
    ``"User: {question}\\n{instruction}\\n\\nAssistant:"`` is used.
    """
    content = f"{question}\n{instruction}" if instruction else question
    if use_chat_template and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
    return f"User: {content}\n\nAssistant:"
