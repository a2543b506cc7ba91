"""The one text normalisation used both to train the math classifier and to score pages with it.

A fastText model only sees whitespace-separated tokens, so the same page must turn into the
same tokens at training and at scoring time; ``normalize_text`` is the single place that
decides what those tokens are:

- Unicode NFKC (full-width digits, letters and operators, common in Chinese math text,
  become their ASCII forms), then lower case.
- TeX is kept: a control word (``\\frac``, ``\\alpha``) is one token, an escaped symbol
  (``\\{``, ``\\\\``) is one token, ``$$`` is one token; every other symbol (``^ _ { } = +``,
  ``∫``, ``≤``, ...) is a token of its own, so ``x^2`` and ``x ^ 2`` look the same.
- Numbers: every run of digits becomes zeros, as many as it has digits up to four
  (``7 -> 0``, ``2024 -> 0000``, ``123456 -> 0000``): the shape of a number says something
  (a year, a small constant), its value does not, and this keeps the vocabulary small.
- Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar,
  Tibetan) are split into one token per character, so Chinese and Japanese pages are
  represented by character uni-, bi- and tri-grams (fastText ``wordNgrams``) instead of by a
  handful of sentence-long "words" that never repeat. Hangul is written with spaces and
  stays word-tokenised.
- Whitespace of any kind, control and zero-width characters separate tokens; the result is
  one line (fastText reads one example per line) of single-space-separated tokens.
- Only the first ``max_tokens`` tokens are kept (default 20,000): scoring cost is bounded per
  page, and the start of a page says whether it is about math. The paper does not state a
  normalisation or a length limit; this is ours.

Because symbols are split off, the text can never smuggle a fastText label (``__label__x``
becomes ``_ _ label _ _ x``).
"""
from __future__ import annotations

import re
import unicodedata

from pipeline.unicode_scripts import UNSEGMENTED_RANGES  # one definition for every stage

DEFAULT_MAX_TOKENS = 20_000

# Scripts that do not separate words with spaces: one token per character.
UNSEGMENTED_CHAR = f"[{UNSEGMENTED_RANGES}]"

_TOKEN = re.compile(
    r"\\[a-z]+"  # TeX control word
    r"|\\[^a-z\s]"  # TeX escaped symbol: \{ \} \\ \, \;
    r"|\$\$"  # display-math delimiter
    rf"|{UNSEGMENTED_CHAR}"  # one character of an unsegmented script
    r"|\d+"  # a run of digits (mapped to zeros below)
    rf"|[^\W\d_{UNSEGMENTED_RANGES}]+"  # a word: letters (and marks) of a space-separated script
    r"|[^\w\s]|_"  # any other single symbol
)
# Control, format (zero-width) and private-use characters: treated as separators.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ue000-\uf8ff]")


_FOUR_OR_MORE_DIGITS = re.compile(r"\d{4,}")
_DIGIT = re.compile(r"\d")
# A token is at most a few dozen characters in practice: reading max_tokens * 64 characters
# bounds the work on a huge page without changing the first max_tokens tokens of a normal one.
_CHARS_PER_TOKEN_BOUND = 64


def tokenize(text: str, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> list[str]:
    """The classifier's tokens of ``text`` (see the module docstring), at most ``max_tokens``.

    Runs as a few C-level regex passes (no Python loop per token): digits are rewritten to
    their zero shape first, then the tokens are found in one ``findall``.
    """
    if not text:
        return []
    if max_tokens is not None:
        text = text[: max_tokens * _CHARS_PER_TOKEN_BOUND]
    text = unicodedata.normalize("NFKC", text).lower()
    text = _INVISIBLE.sub(" ", text)
    text = _DIGIT.sub("0", _FOUR_OR_MORE_DIGITS.sub("0000", text))
    tokens = _TOKEN.findall(text)
    return tokens[:max_tokens] if max_tokens is not None else tokens


def normalize_text(text: str, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> str:
    """``text`` as one line of space-separated classifier tokens; ``""`` when it has none.

    Guarantees: the result holds no newline, no tab and no doubled space, so it is a valid
    fastText input line; the same input always gives the same output.
    """
    return " ".join(tokenize(text, max_tokens))
