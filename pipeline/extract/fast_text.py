"""HTML -> text good enough to score, fast: the first tier of the two-tier extraction.

``fast_main_text(html, url)`` parses the page with resiliparse (lexbor, C++) and takes its
main-content plain text. The TeX a page holds in markup that is cheap to read is put in place
first, as ``$..$`` / ``$$..$$`` text: ``<script type="math/tex">`` (MathJax v2), KaTeX output (its
``application/x-tex`` annotation, the rendered glyphs dropped), ``<math>`` with a TeX annotation
or ``alttext``, and formula images (the same test as the precise extractor's,
``math_formulas.tex_from_image``). TeX already written between delimiters in the text stays as it
is. Everything else the precise extractor does (MathML conversion, restoring dropped formula
sections, page-configured delimiters) is left to the second tier.

This text decides which pages are recalled; it never reaches the corpus: the pages that are
recalled are extracted again by ``html_math.extract_main_text`` (``pipeline.extract.refine``), so
the corpus text is the precise extractor's, byte for byte.

Never raises on bad HTML: any failure gives an empty text (callers count empty pages).
"""
from __future__ import annotations

import logging
import re

import lxml.html
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from .html_math import MAX_HTML_CHARS, Extracted, _finish_text, _strip_sentinels
from .math_delimiters import page_delimiters
from .mathml_to_latex import mathml_to_latex
from .math_renderer import loads_math_renderer
from .math_formulas import DISPLAY_CLOSE, DISPLAY_OPEN, INLINE_CLOSE, INLINE_OPEN, clean_tex, tex_from_image

__all__ = ["fast_main_text"]

LOG = logging.getLogger(__name__)

# The output classes MathJax v2 writes next to its ``math/tex`` scripts (glyph copies of them).
_MJ2_COPIES = ".MathJax_Preview, .MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML, .MJX_Assistive_MathML"
_CONFIG_HINTS = (b"inlinemath", b"displaymath", b"delimiters", b"asciimath")
# Every name the markup passes and the delimiter reading look for in the raw HTML. Most hold
# "math": a page without it is settled by five substring scans instead of eleven.
_MATH_NAMES = (b"math/tex", b"math/x-tex", b"<math", b":math", b"inlinemath", b"displaymath", b"asciimath")
_TEX_NAMES = (b"katex", b"text/tex")
_OTHER_NAMES = (b"<img", b"delimiters")
_INLINE_WRAPPERS = {"span", "a", "em", "i", "b", "strong", "font", "sup", "sub"}
_FORMULA_IMAGE_HINT = re.compile(rb"latex|mimetex|mathtex|codecogs|cht=tx|mwe-math|class=\"?math|/math/render|formula")
# An ``<img>`` tag, quoted attribute values (which may hold ``>``) included.
_IMG_TAG = re.compile(rb"""<img\b(?:[^>"']+|"[^"]*"|'[^']*')*>""")
_TEX_ENCODINGS = {"application/x-tex", "text/x-tex", "tex", "latex", "application/x-latex", "text/latex"}


class _Attrs:
    """The ``.get`` of an lxml element over a resiliparse node (for ``tex_from_image``)."""

    def __init__(self, node):
        self.node = node

    def get(self, name: str, default=None):
        value = self.node.getattr(name)
        return default if value is None else value


def _formula(tree: HTMLTree, tex: str, display: bool):
    tex = clean_tex(tex)
    if not tex:
        return None
    return tree.create_text_node(f"{DISPLAY_OPEN}{tex}{DISPLAY_CLOSE}" if display else f"{INLINE_OPEN}{tex}{INLINE_CLOSE}")


def _replace(tree: HTMLTree, node, tex: str | None, display: bool) -> int:
    new = _formula(tree, tex or "", display)
    parent = node.parent
    if parent is None:
        return 0
    if new is None:
        parent.remove_child(node)
        return 0
    parent.replace_child(new, node)
    return 1


def _annotation(node) -> str | None:
    for ann in node.query_selector_all("annotation"):
        if (ann.getattr("encoding") or "").lower() in _TEX_ENCODINGS:
            return ann.text
    return None


def markup_names(lowered: bytes) -> frozenset[bytes]:
    """The names of math markup and renderer settings that the lower-cased raw HTML holds (of
    ``_MATH_NAMES``, ``_TEX_NAMES``, ``_OTHER_NAMES``), exactly as one substring test each would find them.

    >>> sorted(markup_names(b'<p>x</p><script type="math/tex">a</script><img src=a.png>'))
    [b'<img', b'math/tex']
    >>> markup_names(b"<p>plain</p>")
    frozenset()
    """
    found = [name for name in _OTHER_NAMES if name in lowered]
    if b"math" in lowered:
        found += [name for name in _MATH_NAMES if name in lowered]
    found += [name for name in _TEX_NAMES if name in lowered]  # "tex" is on most pages ("text"): no anchor
    return frozenset(found)


def inline_markup_math(tree: HTMLTree, lowered: bytes, names: frozenset[bytes]) -> int:
    """Put the TeX of the cheap markup formulas of ``tree`` in place as delimited text; returns
    how many were put. ``lowered`` is the raw HTML ``tree`` was parsed from, UTF-8 and lower-cased
    (``names``: its ``markup_names``): each kind is looked for only when the HTML names it, so a
    page without math costs a few substring searches."""
    body = tree.body
    if body is None:
        return 0
    count = 0
    if b"katex" in names:
        count += _katex(tree, body)
    if b"math/tex" in names or b"math/x-tex" in names or b"text/tex" in names:
        count += _mathjax_scripts(tree, body)
    if b"<math" in names or b":math" in names:
        count += _mathml(tree, body)
    if b"<img" in names and _has_formula_image(lowered):
        count += _images(tree, body)
    return count


def _has_formula_image(lowered: bytes) -> bool:
    """Whether an ``<img>`` tag of the page (its own attributes, as ``tex_from_image`` reads them)
    names a formula renderer or class."""
    return any(_FORMULA_IMAGE_HINT.search(m.group()) for m in _IMG_TAG.finditer(lowered))


def _katex(tree: HTMLTree, body) -> int:
    count = 0
    for node in body.query_selector_all(".katex-display, .katex"):
        if node.parent is None or node.closest(".katex-display") not in (None, node):
            continue  # the inner .katex of a display formula: replaced with its parent
        count += _replace(tree, node, _annotation(node), node.class_list and "katex-display" in node.class_list)
    return count


def _mathjax_scripts(tree: HTMLTree, body) -> int:
    count = 0
    scripts = [s for s in body.query_selector_all("script")
               if (s.getattr("type") or "").lower().replace("text/", "math/").startswith(("math/tex", "math/x-tex"))]
    if scripts:
        for copy in body.query_selector_all(_MJ2_COPIES):
            if copy.parent is not None:
                copy.parent.remove_child(copy)
        for script in scripts:
            count += _replace(tree, script, script.text, "mode=display" in (script.getattr("type") or "").lower())
    return count


def _mathml(tree: HTMLTree, body) -> int:
    count = 0
    for math in list(body.get_elements_by_tag_name("math")):
        tex = _annotation(math) or math.getattr("alttext") or _converted(math)
        if tex and math.parent is not None:
            count += _replace(tree, _formula_holder(math), tex, (math.getattr("display") or "").lower() == "block")
    return count


def _converted(math) -> str:
    """MathML without TeX, converted to LaTeX (``mathml_to_latex``, bounded) from its markup."""
    try:
        element = lxml.html.fragment_fromstring(math.html)
        return mathml_to_latex(element) or ""
    except Exception:  # noqa: BLE001 - unconvertible MathML stays as its glyph text
        return ""


def _formula_holder(math):
    """The largest inline element around ``math`` that holds nothing else with text (a wrapper
    with a hidden assistive copy and a fallback image, as Wikipedia writes), else ``math``."""
    own = len((math.text or "").strip())
    node = math
    while node.parent is not None and (node.parent.tag or "").lower() in _INLINE_WRAPPERS:
        if len((node.parent.text or "").strip()) > own:
            break
        node = node.parent
    return node


def _images(tree: HTMLTree, body) -> int:
    count = 0
    for img in list(body.get_elements_by_tag_name("img")):
        tex = tex_from_image(_Attrs(img))
        if tex:
            count += _replace(tree, img, tex, False)
    return count


def renderer_delimiters(tree: HTMLTree, names: frozenset[bytes]):
    """The TeX delimiters the page configures for its renderer (``math_delimiters.page_delimiters``);
    its scripts are read only when the raw HTML names (``markup_names``) a delimiter setting or AsciiMath."""
    if not any(hint in names for hint in _CONFIG_HINTS):
        return page_delimiters([])
    scripts = tree.document.query_selector_all("script") if tree.document is not None else []
    texts = [s.text or "" for s in scripts if not (s.getattr("type") or "").lower().startswith("math/")]
    return page_delimiters(texts, [s.getattr("src") or "" for s in scripts])


def fast_main_text(html: str, url: str | None = None) -> Extracted:
    """Main-content text of ``html`` with its cheap-to-read TeX in place (see the module
    docstring). Formulas are written and counted as the precise extractor does: markup formulas
    as ``$..$``/``$$..$$``, and TeX between the delimiters the page's renderer reads (a lone
    ``$5 and $6`` is not a formula unless the page configures ``$``). Never raises."""
    try:
        if not html or not html.strip():
            return Extracted(text="", title=None, num_formulas=0)
        html = _strip_sentinels(html[:MAX_HTML_CHARS])
        tree = HTMLTree.parse(html)
        title = (tree.title or "").strip() or None
        lowered = html.encode("utf-8", "surrogatepass").lower()  # bytes: ASCII lower-casing, fast
        names = markup_names(lowered)
        inline_markup_math(tree, lowered, names)
        text = extract_plain_text(tree, main_content=True, preserve_formatting=True, alt_texts=False,
                                  list_bullets=True).strip()
        text, num_formulas, sources = _finish_text(text, renderer_delimiters(tree, names), {})
        return Extracted(text=text, title=title, num_formulas=num_formulas, formula_sources=sources,
                         math_renderer=loads_math_renderer(html, lowered))
    except Exception as exc:  # noqa: BLE001 - contract: never raise on bad HTML
        LOG.debug("fast extraction failed for %s: %r", url, exc)
        return Extracted(text="", title=None, num_formulas=0)
