"""Find every formula an HTML tree holds as markup and put its TeX in its place as text.

Run on the parsed page *before* the main-text extractor, so that the formulas travel through
it as ordinary text. One depth-first pass; a matched formula container is replaced whole (its
rendered glyphs, assistive MathML and fallback image go with it, so a formula is never written
twice) and its children are not visited. Mechanisms, in the order they are tried on an element:

1. ``<script type="math/tex">`` (also ``text/tex``, ``; mode=display``), ``math/asciimath``
   (converted to LaTeX), ``math/mml`` (MathML converted to LaTeX). When a page has such
   scripts, MathJax v2's rendered copies (``.MathJax``, ``.MathJax_Preview``,
   ``.MathJax_Display``, ``.MathJax_SVG``, ``.MJX_Assistive_MathML`` ...) are dropped.
2. KaTeX output (``.katex-display`` / ``.katex``): the ``application/x-tex`` annotation; a
   KaTeX copy of a formula that a ``math/tex`` script already gives is dropped.
3. MathJax v3/v4 output (``<mjx-container>``): assistive MathML, a ``data-latex``/``data-tex``
   attribute, or TeX left as text in a child element (e.g. ``<formula>``).
4. Wikipedia's ``.mwe-math-element`` and any ``<math>`` (prefixed ``m:math`` too): the
   ``application/x-tex`` annotation, else ``alttext``, else MathML converted to LaTeX.
5. Images holding TeX: from LaTeX renderers (codecogs, mimetex, mathtex, ``latex.php``,
   WordPress/AoPS LaTeX, Google chart ``cht=tx``) or marked as math by their class
   (``mwe-math-fallback-image``, Sphinx ``img.math``, ``latex``, ``tex``): the ``alt`` text,
   else the TeX in the URL query.
6. Elements carrying TeX in an attribute (``data-tex``, ``data-latex``, ``data-expr``,
   ``data-formula``, ``data-math``), and the elements ``math_renderer.mark_regions`` found whose
   whole text is TeX a script typesets (custom elements, classed spans: no name list).
7. A ``<div>`` whose own text is a display formula (Sphinx ``<div class="math">\\[..\\]</div>``)
   is retagged ``<p>`` so the extractor keeps it as a paragraph.

Each formula becomes ``⦃tex⦄`` (inline) or ``⦅tex⦆`` (display): rare visible characters the
extractor keeps (it strips private-use and invisible ones), turned into ``$..$``/``$$..$$``
afterwards; only formulas that survive extraction are counted. TeX is cleaned minimally:
whitespace folded (kept when the TeX has ``%`` comments), a ``{\\displaystyle ...}`` wrapper
removed. ``<pre>``, ``<code>`` and ``<textarea>`` are not searched (code, not math).

Bounds: at most ``MAX_FORMULAS`` per page and ``MAX_TEX_CHARS`` per formula are converted
(beyond, the markup is left as it is); MathML conversion is bounded in ``mathml_to_latex``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from lxml import etree

from .math_asciimath import asciimath_to_latex
from .math_renderer import CODE_SENTINELS
from .mathml_to_latex import mathml_to_latex

__all__ = [
    "DISPLAY_CLOSE",
    "DISPLAY_OPEN",
    "INLINE_CLOSE",
    "INLINE_OPEN",
    "MAX_FORMULAS",
    "MAX_TEX_CHARS",
    "SENTINELS",
    "RewriteStats",
    "clean_tex",
    "rewrite_formulas",
    "tex_from_image",
]

INLINE_OPEN, INLINE_CLOSE = "\u2983", "\u2984"  # ⦃ ⦄
DISPLAY_OPEN, DISPLAY_CLOSE = "\u2985", "\u2986"  # ⦅ ⦆
SENTINELS = INLINE_OPEN + INLINE_CLOSE + DISPLAY_OPEN + DISPLAY_CLOSE

_ALL_SENTINELS = SENTINELS + CODE_SENTINELS  # a formula never carries a code or protect mark

MAX_FORMULAS = 20000
MAX_TEX_CHARS = 20000

_MATH_SCRIPT = re.compile(r"^\s*(?:math|text)/(?:x-)?(la)?tex\b|^\s*math/(asciimath)|^\s*math/(mml)", re.IGNORECASE)
_MJ2_RENDERED = {
    "MathJax",
    "MathJax_Preview",
    "MathJax_Display",
    "MathJax_SVG",
    "MathJax_SVG_Display",
    "MathJax_CHTML",
    "MathJax_PHTML",
    "MathJax_MathML",
    "MathJax_MathContainer",
    "MJX_Assistive_MathML",
    "mjx-chtml",
    "MathJax_SVG_Hidden",
}
_NO_DESCEND = {"pre", "code", "textarea", "style", "script", "svg", "head", "title", "template"}
_TEX_ATTRS = ("data-tex", "data-latex", "data-expr", "data-formula", "data-math")
_TEX_ATTR_SET = frozenset(_TEX_ATTRS)
_CLASS_HINT = re.compile(r"katex|MathJax|MJX|mjx|mwe-math")  # every class token ``visit`` checks holds one


def _attributes_may_match(el: etree._Element) -> bool:
    """Whether ``visit`` can match ``el`` (not a script, bare-matched or TeX element) by its attributes."""
    keys = el.keys()
    if not keys:
        return False
    if not _TEX_ATTR_SET.isdisjoint(keys):
        return True
    cls = el.get("class")
    return bool(cls) and _CLASS_HINT.search(cls) is not None


_BARE_MATCHES = frozenset({"math", "mjx-container", "div", "img"})  # may match without attributes
_LATEX_IMG_SRC = re.compile(
    r"codecogs\.com|mimetex|mathtex|latex\.php|/latex\?|cht=tx|latex\.artofproblemsolving|wp\.com/latex|/math/render",
    re.IGNORECASE,
)
_LATEX_IMG_CLASS = {
    "math",
    "latex",
    "tex",
    "mwe-math-fallback-image-inline",
    "mwe-math-fallback-image-display",
    "tex-image",
    "latex-image",
    "ql-img-inline-formula",
    "ql-img-displayed-equation",
}
_DISPLAY_TEXT = re.compile(r"^\s*(?:\\\[|\$\$|\\begin\{)")
_TEXLIKE = re.compile(r"[\\^_{}=<>+\-]|^\s*[A-Za-z0-9]{1,3}\s*$")
_DISPLAYSTYLE = re.compile(r"^\{\s*\\displaystyle\s*(.*)\}$", re.DOTALL)


@dataclass
class RewriteStats:
    """What the rewrite found, by mechanism (for summaries and tests)."""

    by_mechanism: dict[str, int] = field(default_factory=dict)
    source_of: dict[str, str] = field(default_factory=dict)  # TeX as written -> first mechanism
    dropped_duplicates: int = 0
    skipped_over_cap: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_mechanism.values())

    def add(self, mechanism: str) -> None:
        self.by_mechanism[mechanism] = self.by_mechanism.get(mechanism, 0) + 1


def _local(tag: object) -> str:
    if type(tag) is not str:
        return "" if not isinstance(tag, str) else _local(str(tag))
    if "}" in tag or ":" in tag:
        return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()
    return tag.lower()


def _classes(el: etree._Element) -> set[str]:
    value = el.get("class")
    return set(value.split()) if value else set()


def _balanced(tex: str) -> bool:
    depth = 0
    for i, ch in enumerate(tex):
        if ch == "{" and (i == 0 or tex[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or tex[i - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def clean_tex(tex: str | None) -> str:
    """TeX as it should appear in the text: trimmed, whitespace folded, no ``{\\displaystyle}`` wrapper."""
    if not tex:
        return ""
    if any(c in tex for c in _ALL_SENTINELS):
        tex = re.sub(f"[{_ALL_SENTINELS}]", "", tex)
    tex = tex.strip()
    m = _DISPLAYSTYLE.match(tex)
    if m and _balanced(m.group(1)):
        tex = m.group(1).strip()
    elif tex.startswith("\\displaystyle") and not tex[len("\\displaystyle") : len("\\displaystyle") + 1].isalpha():
        tex = tex[len("\\displaystyle") :].strip()
    if "%" not in tex.replace("\\%", ""):
        tex = re.sub(r"\s+", " ", tex)
    if tex.lower() in {"null", "undefined", "none"}:
        return ""
    return tex


def _annotation_tex(el: etree._Element) -> str | None:
    for node in el.iter():
        if _local(node.tag) == "annotation":
            enc = (node.get("encoding") or "").lower()
            if enc in {"application/x-tex", "text/x-tex", "tex", "latex", "application/x-latex", "text/latex"}:
                return node.text or ""
    return None


def _math_tex(math_el: etree._Element) -> str:
    tex = _annotation_tex(math_el)
    if tex is None or not tex.strip():
        tex = math_el.get("alttext")
    if not tex or not tex.strip():
        tex = mathml_to_latex(math_el)
    return tex or ""


def tex_from_image(img: etree._Element) -> str | None:
    """The TeX an ``<img>`` holds (alt text, else URL query) when it is a formula image, else None."""
    src = img.get("src") or img.get("data-src") or img.get("data-lazy-src") or ""
    classes = {c.lower() for c in _classes(img)}
    from_renderer = bool(_LATEX_IMG_SRC.search(src))
    if not (from_renderer or classes & _LATEX_IMG_CLASS or any(c.startswith("mwe-math-fallback") for c in classes)):
        return None
    alt = (img.get("alt") or img.get("title") or "").strip()
    if len(alt) >= 2 and alt[0] == "$" and alt[-1] == "$":
        alt = alt.strip("$").strip()
    if alt and (_TEXLIKE.search(alt) or from_renderer):
        return alt
    if from_renderer and "?" in src:
        query = src.split("?", 1)[1]
        query = re.sub(r"&(?:amp;)?space;", " ", query)
        return unquote(query.replace("+", " ") if "%" in query else query).strip() or None
    return None


def _is_display(el: etree._Element, classes: set[str]) -> bool:
    display = (el.get("display") or el.get("mode") or "").lower()
    if display in {"block", "true", "display"}:
        return True
    return any("display" in c.lower() for c in classes)


class _Rewriter:
    def __init__(self, root: etree._Element, tex_elements: dict[etree._Element, bool] | None = None):
        self.root = root
        self.tex_elements = tex_elements or {}
        self.stats = RewriteStats()
        self.script_tex: set[str] = set()
        self.touched: list[etree._Element] = []  # parents that received a formula as loose text
        self.has_math_scripts = False
        for script in root.iter("script"):
            if _MATH_SCRIPT.match(script.get("type") or ""):
                self.has_math_scripts = True
                if (script.get("type") or "").lower().find("tex") >= 0:
                    self.script_tex.add(re.sub(r"\s+", "", clean_tex(script.text)))

    # -- replacing -------------------------------------------------------------------------
    def replace(self, el: etree._Element, tex: str | None, display: bool, mechanism: str) -> bool:
        """Put ``tex`` where ``el`` was (keeping its tail); False when there is nothing to put."""
        tex = clean_tex(tex)
        if not tex:
            return False
        if len(tex) > MAX_TEX_CHARS or self.stats.total >= MAX_FORMULAS:
            self.stats.skipped_over_cap += 1
            return False
        marker = (DISPLAY_OPEN + tex + DISPLAY_CLOSE) if display else (INLINE_OPEN + tex + INLINE_CLOSE)
        if display:
            marker = " " + marker + " "
        parent = el.getparent()
        self._remove(el, marker)
        if parent is not None:
            self.touched.append(parent)
        self.stats.add(mechanism)
        self.stats.source_of.setdefault(tex, mechanism)
        return True

    def _remove(self, el: etree._Element, text: str = "") -> None:
        parent = el.getparent()
        if parent is None:
            return
        tail = text + (el.tail or "")
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
        parent.remove(el)

    # -- matchers (each returns True when it consumed the element) --------------------------
    def visit(self, el: etree._Element) -> bool:
        tag = _local(el.tag)
        if not tag:
            return False
        if tag == "script":
            return self.script(el)
        keys = el.keys()
        if not keys and tag not in _BARE_MATCHES:  # no class, no attribute: only few can match
            return bool(self.tex_elements) and el in self.tex_elements and self.tex_element(el)
        classes = _classes(el) if "class" in keys else set()
        if self.has_math_scripts and classes & _MJ2_RENDERED and not tag.startswith("mjx-"):
            self._remove(el)
            self.stats.dropped_duplicates += 1
            return True
        if "katex-display" in classes or "katex" in classes:
            return self.katex(el, classes)
        if tag == "mjx-container":
            return self.mjx_container(el, classes)
        if "mwe-math-element" in classes:
            math = next((n for n in el.iter() if _local(n.tag) == "math"), None)
            if math is not None:
                return self.replace(el, _math_tex(math), _is_display(math, classes), "wikipedia")
            img = next((n for n in el.iter("img")), None)
            return img is not None and self.replace(
                el, tex_from_image(img), _is_display(img, _classes(img)), "wikipedia"
            )
        if tag == "math":
            return self.replace(el, _math_tex(el), _is_display(el, set()), "mathml")
        if tag == "img":
            tex = tex_from_image(el)
            return tex is not None and self.replace(el, tex, _is_display(el, classes), "image")
        if not _TEX_ATTR_SET.isdisjoint(keys):
            for attr in _TEX_ATTRS:
                value = el.get(attr)
                if value and _TEXLIKE.search(value):
                    return self.replace(el, value, _is_display(el, classes), "attribute")
        if self.tex_elements and el in self.tex_elements:
            return self.tex_element(el)
        if tag == "div" and el.text and _DISPLAY_TEXT.match(el.text) and not _has_block_child(el):
            el.tag = "p"
        return False

    def tex_element(self, el: etree._Element) -> bool:
        return self.replace(el, el.text, self.tex_elements[el], "tex element")

    def script(self, el: etree._Element) -> bool:
        typ = el.get("type") or ""
        m = _MATH_SCRIPT.match(typ)
        if not m:
            return False
        display = "mode=display" in typ.replace(" ", "").lower()
        body = el.text or ""
        if m.group(2):
            ok = self.replace(el, asciimath_to_latex(body), display, "script asciimath")
        elif m.group(3):
            try:
                math = etree.fromstring(
                    body.strip().encode("utf-8"), etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
                )
            except Exception:  # noqa: BLE001 - unparsable MathML is dropped with the script
                math = None
            ok = math is not None and self.replace(
                el, mathml_to_latex(math), display or _is_display(math, set()), "script mathml"
            )
        else:
            ok = self.replace(el, body, display, "script tex")
        if not ok:
            self._remove(el)
        return True

    def katex(self, el: etree._Element, classes: set[str]) -> bool:
        tex = _annotation_tex(el)
        if tex is None:
            math = next((n for n in el.iter() if _local(n.tag) == "math"), None)
            tex = mathml_to_latex(math) if math is not None else None
        if not tex:
            return False
        if re.sub(r"\s+", "", clean_tex(tex)) in self.script_tex:
            self._remove(el)
            self.stats.dropped_duplicates += 1
            return True
        return self.replace(el, tex, "katex-display" in classes, "katex")

    def mjx_container(self, el: etree._Element, classes: set[str]) -> bool:
        display = _is_display(el, classes)
        math = next((n for n in el.iter() if _local(n.tag) == "math"), None)
        if math is not None:
            return self.replace(el, _math_tex(math), display, "mathjax3")
        for node in el.iter():
            for attr in ("data-latex", "data-tex"):
                if node.get(attr):
                    return self.replace(el, node.get(attr), display, "mathjax3")
        text = "".join("".join(child.itertext()) for child in el if not _local(child.tag).startswith("mjx-"))
        if text.strip():
            return self.replace(el, text, display, "mathjax3")
        self._remove(el)  # rendered glyphs only (CSS content): nothing readable to keep
        return True

    def run(self) -> RewriteStats:
        """Visit every element depth-first in document order; a consumed element's children
        are not visited, nor those of ``_NO_DESCEND`` elements. Elements without attributes
        that no bare matcher handles are passed over without a call (the hot path)."""
        tex = self.tex_elements
        stack = self.root[::-1]
        while stack:
            el = stack.pop()
            tag = el.tag
            if type(tag) is not str:
                continue  # comments, processing instructions, entities: no children
            if "}" in tag or ":" in tag:
                tag = _local(tag)
            if (tag == "script" or tag in _BARE_MATCHES or (tex and el in tex) or _attributes_may_match(el)) and self.visit(
                el
            ):
                continue
            if tag in _NO_DESCEND or not len(el):
                continue
            stack.extend(el[::-1])
        self.wrap_loose_formulas()
        return self.stats

    def wrap_loose_formulas(self) -> None:
        """Give formulas left as loose text in a container a paragraph of their own.

        Extractors keep paragraphs; text lying directly in a ``<div>`` beside other blocks
        (a rendered formula, a script that was replaced) is often dropped. A ``div`` or
        ``center`` without block children whose text is formulas only becomes a ``<p>``.
        Nothing else is restructured: wrapping loose text in paragraphs elsewhere was
        measured to flip trafilatura's choice of main content on forum pages.
        """
        seen: set[int] = set()
        for parent in self.touched:
            if id(parent) in seen or _local(parent.tag) not in _CONTAINER_TAGS:
                continue
            seen.add(id(parent))
            if (
                parent.tag in ("div", "center")
                and not _has_block_child(parent)
                and _math_only("".join(parent.itertext()))
            ):
                parent.tag = "p"


_BLOCK_TAGS = {
    "div",
    "p",
    "table",
    "ul",
    "ol",
    "section",
    "article",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "form",
    "dl",
}


def _has_block_child(el: etree._Element) -> bool:
    return any(_local(child.tag) in _BLOCK_TAGS for child in el)


_CONTAINER_TAGS = {"div", "center"}


_MARKED = re.compile(f"[{INLINE_OPEN}{DISPLAY_OPEN}][^{SENTINELS}]*[{INLINE_CLOSE}{DISPLAY_CLOSE}]")


def _math_only(text: str) -> bool:
    """Whether ``text`` holds formulas and next to no prose (< 40 other characters)."""
    if INLINE_OPEN not in text and DISPLAY_OPEN not in text:
        return False
    return len(_MARKED.sub("", text).strip()) < 40


def rewrite_formulas(root: etree._Element, tex_elements: dict[etree._Element, bool] | None = None) -> RewriteStats:
    """Replace, in place, every formula container under ``root`` by its sentinel-wrapped TeX.

    ``tex_elements`` (element -> display) are elements whose whole text is TeX (found by
    ``math_renderer.mark_regions``); they are replaced by their text as a formula."""
    return _Rewriter(root, tex_elements).run()
