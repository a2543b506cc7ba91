"""Put back formula paragraphs that the main-text extractor dropped from inside the main text.

Why: trafilatura, and the readability/jusText fallbacks it switches to, judge paragraphs by
their prose; a paragraph that holds only a display formula (``<p>$$h \\approx ...$$</p>``,
a rendered equation block) has almost none and is often removed although the paragraphs
around it are kept. OpenWebMath's answer was to change the extractor; ours leaves
trafilatura's decisions alone and repairs only this one kind of loss.

Method: before extraction, list the page's leaf blocks (block elements without block
children) in document order. A block is *math-only* when it holds a formula (sentinel or
display delimiter) and fewer than ``MAX_PROSE_CHARS`` characters of other text. For each run
of math-only blocks, remember the nearest prose block before and after it (at least
``MIN_ANCHOR_CHARS`` of text). After extraction, a run none of whose formulas is in the output
is inserted back when the end of the block before and the start of the block after are both
in the output, in that order and next to each other (at most ``MAX_GAP_CHARS`` apart). So a
formula is restored only where the extractor kept the text on both sides: boilerplate is
never brought back, and formulas outside the main text stay out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from .math_formulas import DISPLAY_OPEN, INLINE_OPEN

__all__ = ["MAX_PROSE_CHARS", "MIN_ANCHOR_CHARS", "MathRun", "find_math_runs", "restore_dropped_math"]

MIN_ANCHOR_CHARS = 25
MAX_PROSE_CHARS = 40
MAX_GAP_CHARS = 3
ANCHOR_CHARS = 60

_BLOCKS = {
    "p",
    "div",
    "li",
    "td",
    "th",
    "dd",
    "dt",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "center",
    "section",
    "article",
    "pre",
    "caption",
    "figcaption",
}
_SKIP = {"script", "style", "noscript", "template", "head", "nav", "footer", "aside", "form"}
_DISPLAY_TEX = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\begin\{([a-zA-Z]+\*?)\}.+?\\end\{\1\}", re.DOTALL)
_MARKERS = re.compile("[\u2983\u2985][^\u2983-\u2986]*[\u2984\u2986]")
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class MathRun:
    """Consecutive math-only blocks and the prose that surrounds them in the page."""

    blocks: tuple[str, ...]
    before: str  # last ANCHOR_CHARS of the previous prose block (whitespace folded)
    after: str  # first ANCHOR_CHARS of the next prose block


def _fold(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _leaf_blocks(root: etree._Element) -> list[str]:
    blocks: list[str] = []
    stack = [root]
    while stack:
        el = stack.pop()
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if tag in _SKIP:
            continue
        children = [c for c in el if isinstance(c.tag, str)]
        if tag in _BLOCKS and not any(c.tag.lower() in _BLOCKS for c in children):
            text = _fold("".join(el.itertext()))
            if text:
                blocks.append(text)
            continue
        stack.extend(reversed(children))
    return blocks


def _is_math_only(text: str) -> bool:
    if INLINE_OPEN not in text and DISPLAY_OPEN not in text and not _DISPLAY_TEX.search(text):
        return False
    prose = _DISPLAY_TEX.sub("", _MARKERS.sub("", text))
    return len(prose.strip()) < MAX_PROSE_CHARS


def find_math_runs(root: etree._Element) -> list[MathRun]:
    """The runs of math-only blocks of a (formula-rewritten) tree, with their prose anchors."""
    blocks = _leaf_blocks(root)
    runs: list[MathRun] = []
    i = 0
    while i < len(blocks):
        if not _is_math_only(blocks[i]):
            i += 1
            continue
        j = i
        while j < len(blocks) and _is_math_only(blocks[j]):
            j += 1
        before = next((b for b in reversed(blocks[:i]) if len(b) >= MIN_ANCHOR_CHARS), None)
        after = next((b for b in blocks[j:] if len(b) >= MIN_ANCHOR_CHARS), None)
        if before and after:
            runs.append(MathRun(tuple(blocks[i:j]), before[-ANCHOR_CHARS:], after[:ANCHOR_CHARS]))
        i = j
    return runs


def restore_dropped_math(text: str, runs: list[MathRun]) -> str:
    """``text`` with each dropped run put back between its two anchors (see module docstring)."""
    if not runs or not text:
        return text
    folded, index = _fold_with_index(text)
    insertions: list[tuple[int, str]] = []
    for run in runs:
        if any(_core(block) and _core(block) in folded for block in run.blocks):
            continue  # (part of) the run survived: nothing to repair
        start = folded.find(run.before)
        if start < 0:
            continue
        end_before = start + len(run.before)
        after_pos = folded.find(run.after, end_before)
        if after_pos < 0 or after_pos - end_before > MAX_GAP_CHARS:
            continue
        insertions.append((index[after_pos], "\n".join(run.blocks) + "\n"))
    for pos, block in sorted(insertions, reverse=True):
        prefix = "" if pos == 0 or text[pos - 1] == "\n" else "\n"
        text = text[:pos] + prefix + block + text[pos:]
    return text


def _core(block: str) -> str:
    """The first formula of a block, folded: what must be in the output if the block survived."""
    m = _MARKERS.search(block) or _DISPLAY_TEX.search(block)
    return _fold(m.group(0)) if m else block


def _fold_with_index(text: str) -> tuple[str, list[int]]:
    """Whitespace-folded ``text`` and, for each of its characters, the index in ``text``."""
    chars: list[str] = []
    index: list[int] = []
    in_space = True
    for i, ch in enumerate(text):
        if ch.isspace():
            if not in_space:
                chars.append(" ")
                index.append(i)
            in_space = True
        else:
            chars.append(ch)
            index.append(i)
            in_space = False
    return "".join(chars), index
