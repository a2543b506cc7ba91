"""HTML -> main text with the math kept as TeX.

Method (five steps, each in its own module):

0. ``math_renderer``: what the page tells its renderer (MathJax/KaTeX loaded, ignore/process
   classes, skip tags); code blocks and inline code marked (written fenced / backticked at the
   end, their delimiters not math), text in regions the renderer skips protected, and the
   elements whose whole text is TeX (custom elements, classed spans) found.
1. ``math_formulas.rewrite_formulas``: on the parsed lxml tree, every formula held as markup
   (MathJax/KaTeX scripts and rendered output, MathML, Wikipedia math, LaTeX images, TeX
   attributes and custom elements) is replaced in place by its TeX, wrapped in sentinel
   characters the extractor keeps.
2. ``trafilatura.extract`` on that tree (plain-text output, so nothing is Markdown-escaped):
   the main-text extraction and boilerplate removal are trafilatura's, unchanged.
3. ``math_sections.restore_dropped_sections``: when formulas may have been dropped (fewer
   marked formulas in the text than in the tree, or delimited TeX in the page), the
   formula-bearing parts of the main content that trafilatura removed (example boxes,
   formula-only paragraphs, the other posts of a thread) are put back in document order;
   boilerplate is not. Pages without math skip this step, so their text is trafilatura's.
4. ``math_delimiters.rewrite_delimited_math`` on the extracted text: TeX the page holds as
   text between the delimiters its MathJax/KaTeX reads (``\\(..\\)``, ``\\[..\\]``, ``$$..$$``,
   ``\\begin{align}``..., and the pairs the page configures such as ``$..$`` or ``##..##``;
   backtick AsciiMath when the page loads it, converted to LaTeX) is rewritten as
   ``$..$``/``$$..$$``; the sentinels become ``$..$``/``$$..$$``; two formulas that would touch
   (``$a$$b$``, read as display math) get a space between them.

``num_formulas`` counts the formulas in the returned text (markup formulas that survived the
extraction plus delimited ones). The title is trafilatura's title heuristic (``og:title``,
``<title>``, ``<h1>``), read before the tree is changed.

Bounds on pathological input: only the first ``MAX_HTML_CHARS`` characters are parsed (Common
Crawl itself truncates payloads at 1 MiB); lxml's parser stops nesting at depth 256, so deep
nesting costs nothing extra; at most ``MAX_FORMULAS`` formulas per page are converted (see
``math_formulas``). ``extract_main_text`` never raises: any failure gives an empty text.

Departures from the paper: the paper does not describe its HTML extraction; this follows
OpenWebMath's idea (keep the math as TeX during extraction) with trafilatura as the extractor,
whose main-content choice is only added to (step 3), never changed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.metadata import extract_title

from .math_asciimath import asciimath_to_latex
from .math_delimiters import append_formula, opener_regex, page_delimiters, rewrite_delimited_math
from .math_formulas import DISPLAY_CLOSE, DISPLAY_OPEN, INLINE_CLOSE, INLINE_OPEN, SENTINELS, rewrite_formulas
from .math_renderer import (
    CODE_CLOSE,
    CODE_OPEN,
    CODE_SENTINELS,
    INLINE_CODE_CLOSE,
    INLINE_CODE_OPEN,
    PROTECT_CLOSE,
    PROTECT_OPEN,
    dollars_are_math,
    mark_regions,
    read_renderer,
)
from .math_sections import has_marked_formula, list_blocks, restore_dropped_sections

__all__ = ["MAX_HTML_CHARS", "Extracted", "extract_main_text"]

LOG = logging.getLogger(__name__)

MAX_HTML_CHARS = 4_000_000  # characters of HTML parsed per page; the rest is ignored

_TEX_HINTS = ("$$", "\\[", "\\(", "\\begin{")  # delimited TeX may be in the page


def _may_hold_delimited_tex(html: str) -> bool:
    """Whether the first ``MAX_HTML_CHARS`` of ``html`` hold a standard TeX delimiter
    (substring scans: a regex alternation without a literal prefix is slow on large pages)."""
    head = html if len(html) <= MAX_HTML_CHARS else html[:MAX_HTML_CHARS]
    return any(hint in head for hint in _TEX_HINTS)
_ALL_SENTINELS = SENTINELS + CODE_SENTINELS
_MARKED = re.compile(
    "|".join(
        f"{re.escape(opening)}([^{_ALL_SENTINELS}]*){re.escape(closing)}"
        for opening, closing in (
            (DISPLAY_OPEN, DISPLAY_CLOSE),
            (INLINE_OPEN, INLINE_CLOSE),
            (CODE_OPEN, CODE_CLOSE),
            (INLINE_CODE_OPEN, INLINE_CODE_CLOSE),
            (PROTECT_OPEN, PROTECT_CLOSE),
        )
    )
)
_CODE_OR_PROTECTED = re.compile(
    "|".join(
        f"{re.escape(opening)}[^{_ALL_SENTINELS}]*{re.escape(closing)}"
        for opening, closing in ((CODE_OPEN, CODE_CLOSE), (INLINE_CODE_OPEN, INLINE_CODE_CLOSE), (PROTECT_OPEN, PROTECT_CLOSE))
    )
)


@dataclass(frozen=True)
class Extracted:
    """The result of extracting one page."""

    text: str  # main text, formulas as $...$ (inline) / $$...$$ (display) at their place
    title: str | None
    num_formulas: int
    # formulas in ``text`` by where they came from (mechanism or delimiter kind); sums to num_formulas
    formula_sources: dict[str, int] = field(default_factory=dict)
    # the page loads MathJax/KaTeX (``math_renderer.loads_math_renderer``), when the extractor read it
    # on the way (the fast tier does; None: the caller reads it from the HTML)
    math_renderer: bool | None = None


_SENTINEL_RE = re.compile(f"[{_ALL_SENTINELS}]")


def _strip_sentinels(text: str) -> str:
    """``text`` without the sentinel characters (``str.translate`` is slow on large pages)."""
    return _SENTINEL_RE.sub("", text) if any(c in text for c in _ALL_SENTINELS) else text


def _parse(html: str) -> etree._Element | None:
    html = _strip_sentinels(html[:MAX_HTML_CHARS])
    # an XML declaration with an encoding is refused by lxml in a str: parse bytes instead
    data = html.encode("utf-8", errors="replace")
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    root = lxml.html.document_fromstring(data, parser=parser)
    return root


def _fence(body: str, before: str, after: str) -> str:
    """A code block as a fenced block on lines of its own (line breaks and indentation kept)."""
    body = body.strip("\n").rstrip()
    if not body.strip():
        return ""
    fence = "~~~" if "```" in body else "```"
    head = "" if not before or before.endswith("\n") else "\n"
    tail = "" if not after or after.startswith("\n") else "\n"
    return f"{head}{fence}\n{body}\n{fence}{tail}"


def _inline_code(body: str) -> str:
    if not body.strip():
        return body
    tick = "``" if "`" in body else "`"
    pad = " " if tick == "``" else ""
    return f"{tick}{pad}{body.strip()}{pad}{tick}"


def _finish_text(text: str, delims, sources: dict[str, str]) -> tuple[str, int, dict[str, int]]:
    """Sentinels -> ``$``/``$$``, code fences and inline code; delimited TeX outside code and
    skipped regions -> ``$``/``$$``. Returns the text, its formula count and the count by source."""
    out: list[str] = []
    tally: dict[str, int] = {}
    pos = 0
    converter = asciimath_to_latex if delims.asciimath else None
    for m in _MARKED.finditer(text):
        chunk, _ = rewrite_delimited_math(text[pos : m.start()], delims, converter, tally)
        out.append(chunk)
        display, inline, code, inline_code, protected = m.groups()
        if display is not None or inline is not None:
            tex = display if display is not None else inline
            append_formula(out, f"$${tex}$$" if display is not None else f"${tex}$")
            source = sources.get(tex, "markup")
            tally[source] = tally.get(source, 0) + 1
        elif code is not None or (inline_code is not None and "\n" in inline_code.strip()):
            body = code if code is not None else inline_code
            out.append(_fence(body, "".join(out[-2:]), text[m.end() : m.end() + 1]))
        elif inline_code is not None:
            out.append(_inline_code(inline_code))
        else:
            out.append(protected)
        pos = m.end()
    chunk, _ = rewrite_delimited_math(text[pos:], delims, converter, tally)
    out.append(chunk)
    result = _strip_sentinels("".join(out))  # unpaired sentinels (cut by the extractor)
    return result, sum(tally.values()), dict(sorted(tally.items()))


def _configured_math(delims) -> bool:
    """Whether the page configures delimiters beyond the standard ones, or AsciiMath."""
    return delims.asciimath or len(delims.inline) > 1 or len(delims.display) > 2


def _formula_test(delims):
    """A test of whether a block's text (before ``_finish_text``) holds a formula."""

    def has_formula(text: str) -> bool:
        if has_marked_formula(text):
            return True
        if any(c in text for c in CODE_SENTINELS):
            text = _CODE_OR_PROTECTED.sub(" ", text)
        return rewrite_delimited_math(text, delims)[1] > 0

    return has_formula


def extract_main_text(html: str, url: str | None = None) -> Extracted:
    """Extract the main text of ``html`` keeping its math as TeX. Never raises on bad HTML:
    returns an ``Extracted`` with empty text instead (callers count empty pages)."""
    try:
        if not html or not html.strip():
            return Extracted(text="", title=None, num_formulas=0)
        root = _parse(html)
        if root is None:
            return Extracted(text="", title=None, num_formulas=0)
        try:
            title = extract_title(root)
        except Exception:  # noqa: BLE001 - a title is optional
            title = None
        script_els = list(root.iter("script"))
        scripts = [s.text or "" for s in script_els if not (s.get("type") or "").lower().startswith("math/")]
        srcs = [s.get("src") or "" for s in script_els]
        delims = page_delimiters(scripts, srcs)
        renderer = read_renderer(
            scripts, srcs, [s.text or "" for s in root.iter("style")], [ln.get("href") or "" for ln in root.iter("link")]
        )
        if ("$", "$") not in delims.inline and dollars_are_math(html, renderer):
            delims = replace(delims, inline=delims.inline + (("$", "$"),))
        regions = mark_regions(root, renderer, opener_regex(delims), html)
        stats = rewrite_formulas(root, regions.tex_elements)
        text = trafilatura.extract(root, url=url, include_comments=True) or ""
        delimited = _may_hold_delimited_tex(html) or _configured_math(delims)
        marked_in_text = text.count(INLINE_OPEN) + text.count(DISPLAY_OPEN)
        if text and (delimited or marked_in_text < stats.total):  # formulas may have been dropped
            text, _restored = restore_dropped_sections(text, list_blocks(root), _formula_test(delims))
        text, num_formulas, sources = _finish_text(text, delims, stats.source_of)
        return Extracted(text=text, title=title or None, num_formulas=num_formulas, formula_sources=sources)
    except Exception as exc:  # noqa: BLE001 - contract: never raise on bad HTML
        LOG.debug("extraction failed for %s: %r", url, exc)
        return Extracted(text="", title=None, num_formulas=0)
