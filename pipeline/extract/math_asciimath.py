"""AsciiMath -> LaTeX for pages written in AsciiMath (``<script type="math/asciimath">`` or
backtick-delimited text on pages that load ASCIIMathML).

Method: ``py-asciimath``'s Lark grammar (``ASCIIMath2Tex``), built once per process on first
use (about a second), then a few milliseconds per formula. Never raises: a formula the grammar
rejects, one longer than ``MAX_ASCIIMATH_CHARS``, or a missing package gives the AsciiMath
text unchanged (still readable math, just not TeX).

Two py-asciimath 0.3.0 mistakes are worked around before parsing: the AsciiMath space ``\\ ``
(backslash, space) came out as ``\\setminus``: it is dropped (spacing only); the text words
``and``/``or``/``if`` came out as ``\\mathmr{...}`` (``or`` even as ``and``): they are given
to the grammar as quoted text, which it writes ``\\text{...}``, unless the formula already
holds quoted text (the grammar's quote rule breaks on several); any ``\\mathmr`` left is
written ``\\mathrm``.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

__all__ = ["MAX_ASCIIMATH_CHARS", "asciimath_to_latex"]

_SPACE = re.compile(r"(?<!\\)\\ ")  # the AsciiMath space "\ " (not the "\\" of setminus)
_WORD = re.compile(r"(?<![A-Za-z])(?:and|or|if)(?![A-Za-z])")  # words AsciiMath writes as text

MAX_ASCIIMATH_CHARS = 1000


@lru_cache(maxsize=1)
def _translator():
    """The AsciiMath grammar, built once. py-asciimath calls ``logging.basicConfig(DEBUG)`` at
    import; the root logger's level and handlers are put back as they were."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        from py_asciimath.translator.translator import ASCIIMath2Tex

        return ASCIIMath2Tex(log=False, inplace=True)
    except Exception:  # noqa: BLE001 - package missing or grammar failed to build: keep AsciiMath
        return None
    finally:
        root.setLevel(level)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)


@lru_cache(maxsize=8192)
def asciimath_to_latex(asciimath: str) -> str:
    """LaTeX (without ``$`` delimiters) for one AsciiMath formula; the input itself on failure.
    A pure function of its input, memoised per process (short formulas repeat across pages)."""
    text = asciimath.strip()
    if not text or len(text) > MAX_ASCIIMATH_CHARS:
        return text
    translator = _translator()
    if translator is None:
        return text
    text = _SPACE.sub(" ", text)
    if '"' not in text:  # its quoted-text rule breaks on several quoted strings in one formula
        text = _WORD.sub(r'"\g<0>"', text)
    try:
        # _translate: the parse itself, without the per-call root-logger INFO line of translate()
        tex = translator._translate(text, displaystyle=False)
    except Exception:  # noqa: BLE001 - grammar rejects it: keep the AsciiMath text
        return text
    tex = tex.strip().replace("\\mathmr{", "\\mathrm{")
    if tex.startswith("$") and tex.endswith("$") and len(tex) >= 2:
        tex = tex[1:-1].strip()
    return tex or text
