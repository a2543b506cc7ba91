"""Token counting for token budgets and corpus manifests.

``approx_token_count`` is the tokenizer-free default: whitespace-separated words, with every
character of an unsegmented script (CJK ideographs, kana, Hangul, Thai) counted as one token,
so Chinese pages are not counted as a handful of "words". ``TokenCounter`` uses a real
Hugging Face tokenizer from a local folder when one is configured, and the approximation
otherwise.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.unicode_scripts import UNSEGMENTED_RANGES

# Scripts written without spaces between words: each character counts as a token.
_UNSEGMENTED = UNSEGMENTED_RANGES
_TOKEN_RE = re.compile(f"[{_UNSEGMENTED}]|[^\\s{_UNSEGMENTED}]+")


def approx_token_count(text: str | None) -> int:
    """Words (runs of non-space characters) plus one token per unsegmented-script character."""
    if not text:
        return 0
    return sum(1 for _ in _TOKEN_RE.finditer(text))


class TokenCounter:
    """Counts tokens with a local Hugging Face tokenizer, or ``approx_token_count`` when none is given."""

    def __init__(self, tokenizer_path: str | None = None):
        self.tokenizer_path = tokenizer_path or None
        self._tokenizer = None
        if self.tokenizer_path:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path, local_files_only=True)

    @property
    def name(self) -> str:
        return self.tokenizer_path or "approx:words+cjk-chars"

    def count(self, texts: Sequence[str | None]) -> list[int]:
        if self._tokenizer is None:
            return [approx_token_count(t) for t in texts]
        encoded = self._tokenizer([t or "" for t in texts], add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]
