"""AsciiMath -> LaTeX for pages written in AsciiMath (``<script type="math/asciimath">`` or
backtick-delimited text on pages that load ASCIIMathML).

Method: ``py-asciimath``'s Lark grammar (``ASCIIMath2Tex``), built once per process on first
use (about a second), then a few milliseconds per formula. Never raises: a formula the grammar
rejects, one longer than ``MAX_ASCIIMATH_CHARS``, or a missing package gives the AsciiMath
text unchanged (still readable math, just not TeX).
"""

from __future__ import annotations

import logging
from functools import lru_cache

__all__ = ["MAX_ASCIIMATH_CHARS", "asciimath_to_latex"]

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


def asciimath_to_latex(asciimath: str) -> str:
    """LaTeX (without ``$`` delimiters) for one AsciiMath formula; the input itself on failure."""
    text = asciimath.strip()
    if not text or len(text) > MAX_ASCIIMATH_CHARS:
        return text
    translator = _translator()
    if translator is None:
        return text
    try:
        # _translate: the parse itself, without the per-call root-logger INFO line of translate()
        tex = translator._translate(text, displaystyle=False)
    except Exception:  # noqa: BLE001 - grammar rejects it: keep the AsciiMath text
        return text
    tex = tex.strip()
    if tex.startswith("$") and tex.endswith("$") and len(tex) >= 2:
        tex = tex[1:-1].strip()
    return tex or text
