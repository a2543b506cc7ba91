"""TeX written as text between delimiters: which delimiters a page uses, and rewriting them.

MathJax and KaTeX find math in a page's text between delimiter pairs. Some are standard
(``\\(..\\)`` inline; ``\\[..\\]``, ``$$..$$`` and, like MathJax's ``processEnvironments``,
any top-level ``\\begin{env}..\\end{env}`` display), others
each page configures in its script (MathJax ``inlineMath``/``displayMath``, e.g.
``['$','$']``, ``['##','##']``, ``['[itex]','[/itex]']``; KaTeX auto-render
``{left: "$", right: "$", display: false}``). Single dollars are math only where the page
says so: this is how MathJax itself avoids reading prices as math.

``rewrite_delimited_math`` turns every delimited formula into ``$...$`` (inline) or
``$$...$$`` (display) and counts them. Departures from MathJax: an inline formula may not
span a blank line and is at most ``MAX_INLINE_CHARS`` long, a display one at most
``MAX_DISPLAY_CHARS`` (a stray delimiter must not swallow a page); ``\\$`` is never a
delimiter; ``<pre>``/``<code>`` cannot be told apart in extracted text, so TeX written inside
code is rewritten too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "MAX_DISPLAY_CHARS",
    "MAX_INLINE_CHARS",
    "Delimiters",
    "append_formula",
    "opener_regex",
    "page_delimiters",
    "rewrite_delimited_math",
]

MAX_INLINE_CHARS = 1000
MAX_DISPLAY_CHARS = 10000

STANDARD_INLINE = (("\\(", "\\)"),)
STANDARD_DISPLAY = (("$$", "$$"), ("\\[", "\\]"))


@dataclass(frozen=True)
class Delimiters:
    """The delimiter pairs a page's math renderer reads; the standard ones are always included."""

    inline: tuple[tuple[str, str], ...] = STANDARD_INLINE
    display: tuple[tuple[str, str], ...] = STANDARD_DISPLAY
    asciimath: bool = False  # backtick-delimited AsciiMath (ASCIIMathML, MathJax AM input)
    extra: tuple[str, ...] = field(default=(), compare=False)


_PAIR = re.compile(r"\[\s*(['\"])((?:\\.|(?!\1).){1,16})\1\s*,\s*(['\"])((?:\\.|(?!\3).){1,16})\3\s*\]")
_CONFIG = re.compile(r"\b(inlineMath|displayMath)\b['\"]?\s*[:=]\s*([\[{])")
_KATEX = re.compile(
    r"\{\s*['\"]?left['\"]?\s*:\s*(['\"])((?:\\.|(?!\1).){1,16})\1\s*,\s*['\"]?right['\"]?\s*:\s*(['\"])((?:\\.|(?!\3).){1,16})\3\s*,\s*['\"]?display['\"]?\s*:\s*(true|false)",
)
_ASCIIMATH = re.compile(
    r"asciimathml|asciimath\.js|AM_(?:CHTML|HTMLorMML|SVG)|input/asciimath|\bAM\.init", re.IGNORECASE
)


def _may_name_asciimath(s: str) -> bool:
    """A fast pre-test for ``_ASCIIMATH`` (a case-insensitive regex scan of large scripts is slow)."""
    if not s:
        return False
    low = s.lower()
    return "asciimath" in low or "am_" in low or "am.init" in low


def _js_unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _bracket_body(text: str, start: int, limit: int = 2000) -> str:
    """The text of the bracketed JS value starting at ``start`` (balanced, bounded)."""
    opening = text[start]
    closing = "]" if opening == "[" else "}"
    depth = 0
    for i in range(start, min(len(text), start + limit)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start : start + limit]


def page_delimiters(script_texts: list[str], script_srcs: list[str] = ()) -> Delimiters:
    """The delimiters a page configures, read from its scripts' text and ``src`` URLs."""
    inline = list(STANDARD_INLINE)
    display = list(STANDARD_DISPLAY)
    for text in script_texts:
        configured = "inlineMath" in text or "displayMath" in text
        katex = "left" in text and "display" in text
        if not (configured or katex):
            continue
        for m in _CONFIG.finditer(text) if configured else ():
            target = inline if m.group(1) == "inlineMath" else display
            for pair in _PAIR.finditer(_bracket_body(text, m.start(2))):
                left, right = _js_unescape(pair.group(2)), _js_unescape(pair.group(4))
                if left.strip() and right.strip() and (left, right) not in target:
                    target.append((left, right))
        for m in _KATEX.finditer(text) if katex else ():
            left, right = _js_unescape(m.group(2)), _js_unescape(m.group(4))
            target = display if m.group(5) == "true" else inline
            if left.strip() and right.strip() and (left, right) not in target:
                target.append((left, right))
    asciimath = any(_may_name_asciimath(s) and _ASCIIMATH.search(s) for s in list(script_srcs) + list(script_texts))
    return Delimiters(tuple(inline), tuple(display), asciimath)


@lru_cache(maxsize=64)
def opener_regex(delims: Delimiters) -> re.Pattern:
    """A regex matching every opening delimiter ``delims`` reads (``\\begin{env}`` and, on
    AsciiMath pages, the backtick included): text it does not match holds no delimited math."""
    openers = {left for left, _ in delims.inline + delims.display}
    alternatives = []
    for left in sorted(openers, key=len, reverse=True):
        if left == "$":
            alternatives.append(r"(?<!\\)\$(?!\$)")
        elif left == "$$":
            alternatives.append(r"(?<!\\)\$\$")
        else:
            alternatives.append(re.escape(left))
    alternatives.append(r"\\begin\{[a-zA-Z]+\*?\}")
    if delims.asciimath:
        alternatives.append(r"(?<!\\)`")
    return re.compile("|".join(alternatives))


@lru_cache(maxsize=64)
def opener_chars(delims: Delimiters) -> tuple[str, ...]:
    """The characters every match of ``opener_regex(delims)`` starts with: a text holding none of
    them holds no delimited math (a few substring tests, where the regex scan is slow)."""
    firsts = {left[0] for left, _ in delims.inline + delims.display if left} | {"\\"}
    if delims.asciimath:
        firsts.add("`")
    return tuple(sorted(firsts))


def _find_close(text: str, close: str, start: int, limit: int) -> int:
    """Index of the closing delimiter after ``start`` (not escaped), or -1."""
    end_limit = min(len(text), start + limit + len(close))
    pos = start
    while True:
        idx = text.find(close, pos, end_limit)
        if idx < 0:
            return -1
        if close[0] == "$" and idx > 0 and text[idx - 1] == "\\":
            pos = idx + 1
            continue
        return idx


def append_formula(out: list[str], formula: str) -> None:
    """Append ``formula`` to ``out``, with a space when it would touch a formula before it:
    ``$a$$b$`` (two inline formulas, as MathJax reads them) would read as a ``$$`` display."""
    last = next((piece for piece in reversed(out) if piece), "")
    if last.endswith("$"):
        out.append(" ")
    out.append(formula)


def rewrite_delimited_math(text: str, delims: Delimiters, asciimath_to_tex=None,
                           tally: dict[str, int] | None = None) -> tuple[str, int]:
    """``text`` with every delimited formula written ``$..$`` / ``$$..$$``, and their count.

    ``asciimath_to_tex`` converts backtick AsciiMath when the page uses it (else kept as is).
    ``tally``, when given, counts the formulas by source: ``delimited standard`` (``\\(``,
    ``\\[``, ``$$``, environments), ``delimited configured`` (pairs the page configures) and
    ``asciimath backticks``.
    """
    if not text or not any(c in text for c in opener_chars(delims)):
        return text, 0
    regex = opener_regex(delims)
    pairs: dict[str, tuple[str, bool]] = {}
    for left, right in delims.display:
        pairs.setdefault(left, (right, True))
    for left, right in delims.inline:
        pairs.setdefault(left, (right, False))
    out: list[str] = []
    count = 0
    pos = 0
    while True:
        m = regex.search(text, pos)
        if m is None:
            break
        opener = m.group(0)
        start = m.end()
        if opener.startswith("\\begin{"):
            env = opener[len("\\begin{") : -1]
            close_tag = f"\\end{{{env}}}"
            idx = _find_close(text, close_tag, start, MAX_DISPLAY_CHARS)
            if idx < 0:
                out.append(text[pos:start])
                pos = start
                continue
            out.append(text[pos : m.start()])
            append_formula(out, "$$" + text[m.start() : idx + len(close_tag)].strip() + "$$")
            count += 1
            if tally is not None:
                tally["delimited standard"] = tally.get("delimited standard", 0) + 1
            pos = idx + len(close_tag)
            continue
        if opener == "`":
            close, display = "`", False
        else:
            close, display = pairs[opener]
        limit = MAX_DISPLAY_CHARS if display else MAX_INLINE_CHARS
        idx = _find_close(text, close, start, limit)
        body = text[start:idx] if idx >= 0 else ""
        if idx < 0 or not body.strip() or (not display and "\n\n" in body) or (opener == "`" and "\n" in body):
            out.append(text[pos:start])
            pos = start
            continue
        if opener == "`" and asciimath_to_tex is not None:
            body = asciimath_to_tex(body)
        body = body.strip()
        out.append(text[pos : m.start()])
        append_formula(out, f"$${body}$$" if display else f"${body}$")
        count += 1
        if tally is not None:
            if opener == "`":
                source = "asciimath backticks"
            elif (opener, close) in STANDARD_INLINE + STANDARD_DISPLAY:
                source = "delimited standard"
            else:
                source = "delimited configured"
            tally[source] = tally.get(source, 0) + 1
        pos = idx + len(close)
    out.append(text[pos:])
    return "".join(out), count
