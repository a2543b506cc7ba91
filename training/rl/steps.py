"""Where the reasoning steps of a completion end, in tokens (for process supervision).

The rule (the paper does not give one; Math-Shepherd and PRM800K both use one step per line):

1. A step is a run of text ending in a newline. The token whose decoded text contains the
   newline is the step's last token. Newlines that close only whitespace (blank lines, a
   ``"\\n\\n"`` split over two tokens) do not start an empty step; they join the step before.
2. The last step ends at the last real token of the completion (the EOS token when there is
   one), so every completion token belongs to exactly one step and gets an advantage.
3. A completion with no newline is one step ending at its last token: process supervision then
   reduces to outcome supervision.

Tokens are decoded one at a time (cached per id), which is exact for a newline in byte-level
BPE and SentencePiece alike since a newline is one byte.
"""

from __future__ import annotations

from collections.abc import Sequence


class TokenTexts:
    """Decoded text of single token ids, cached (a tokenizer's ``decode`` is slow per call).

    Special tokens (EOS, padding) decode to ``""``, so they never count as step content.
    """

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self._cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        text = self._cache.get(token_id)
        if text is None:
            text = self._tokenizer.decode([token_id], skip_special_tokens=True)
            self._cache[token_id] = text
        return text


def step_ends_from_texts(token_texts: Sequence[str]) -> list[int]:
    """Step end indices (0-based, increasing) for a completion given as its tokens' texts."""
    ends: list[int] = []
    has_content = False
    for i, text in enumerate(token_texts):
        if "\n" in text:
            before, _, after = text.rpartition("\n")
            if has_content or before.strip():
                ends.append(i)
            has_content = bool(after.strip())
        elif text.strip():
            has_content = True
    last = len(token_texts) - 1
    if last < 0:
        return []
    if not ends or ends[-1] != last:
        if has_content or not ends:
            ends.append(last)
        else:
            ends[-1] = last  # only whitespace/specials after the last newline: the last step takes them
    return ends


def step_ends_from_ids(token_ids: Sequence[int], token_text: TokenTexts) -> list[int]:
    """Step end indices for a completion given as token ids (without padding)."""
    return step_ends_from_texts([token_text(int(t)) for t in token_ids])
