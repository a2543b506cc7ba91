"""What a page tells its math renderer, and the TeX it leaves as element text for it.

MathJax and KaTeX typeset a page in the browser. Which text they read is set by the page
itself, and this module reads it the same way:

* ``read_renderer``: whether a renderer is loaded at all (a MathJax or KaTeX script, also
  from a bundle or a local copy: its ``src``, its stylesheet or fonts, an inline call such as
  ``katex.render``/``renderMathInElement``/``MathJax.typeset``), and where it must not look:
  MathJax v2 ``tex2jax`` ``ignoreClass``/``processClass``/``skipTags``, v3/v4
  ``options.ignoreHtmlClass``/``processHtmlClass``/``skipHtmlTags``, KaTeX auto-render
  ``ignoredClasses``/``ignoredTags``, with the renderers' defaults (``tex2jax_ignore``,
  ``mathjax_ignore``, ``pre``/``code``/``textarea``...). The delimiters the page configures
  are read by ``math_delimiters.page_delimiters``.
* ``mark_regions``: one walk over the tree that (a) wraps code (``<pre>`` blocks, inline
  ``<code>``) and the text of regions the renderer skips in sentinel characters, so that the
  extracted text shows where they were (code is written fenced, and delimited TeX there is not
  math), and (b) collects the elements whose *whole text* is TeX that a script typesets: a
  custom element (a tag HTML does not define, ``<d-math>``, ``<x-equation>``) or a classed
  element (``<span class="math">``, ``<div class="katex-src">``), outside skipped regions.
  No tag or class name is looked up: an element is TeX when its text parses as TeX
  (``tex_evidence``), and the elements of one kind (same tag and classes) are judged together,
  so that ``<span class="math">x</span>`` counts when its siblings of the same kind hold
  ``\\alpha^2`` and a class holding prose or prices never does. Classed elements count only
  on a page that loads a renderer; custom elements need strong TeX evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

__all__ = [
    "CODE_CLOSE",
    "CODE_OPEN",
    "CODE_SENTINELS",
    "INLINE_CODE_CLOSE",
    "INLINE_CODE_OPEN",
    "PROTECT_CLOSE",
    "PROTECT_OPEN",
    "Regions",
    "Renderer",
    "dollars_are_math",
    "loads_math_renderer",
    "mark_regions",
    "read_renderer",
    "tex_evidence",
]

# visible characters trafilatura keeps (as the formula sentinels of math_formulas)
CODE_OPEN, CODE_CLOSE = "\u2989", "\u298a"  # ⦉ ⦊  a code block
INLINE_CODE_OPEN, INLINE_CODE_CLOSE = "\u298b", "\u298c"  # ⦋ ⦌  inline code
PROTECT_OPEN, PROTECT_CLOSE = "\u2987", "\u2988"  # ⦇ ⦈  text the renderer skips
CODE_SENTINELS = CODE_OPEN + CODE_CLOSE + INLINE_CODE_OPEN + INLINE_CODE_CLOSE + PROTECT_OPEN + PROTECT_CLOSE

MAX_TEX_ELEMENT_CHARS = 4000

# defaults of MathJax v2 (tex2jax), v3/v4 and KaTeX auto-render
DEFAULT_IGNORE = r"tex2jax_ignore|mathjax_ignore"
DEFAULT_PROCESS = r"tex2jax_process|mathjax_process"
DEFAULT_SKIP_TAGS = frozenset({"script", "noscript", "style", "textarea", "pre", "code", "option", "annotation", "annotation-xml"})
_CODE_TAGS = frozenset({"pre", "code", "kbd", "samp", "tt"})

# the elements HTML (and embedded SVG/MathML roots) defines: any other tag is a custom element
HTML_TAGS = frozenset(
    """a abbr acronym address area article aside audio b base bdi bdo big blink blockquote body br button canvas
    caption center cite code col colgroup data datalist dd del details dfn dialog dir div dl dt em embed fieldset
    figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img
    input ins kbd label legend li link main map mark marquee menu meta meter nav nobr noembed noframes noscript
    object ol optgroup option output p param picture plaintext pre progress q rb rp rt rtc ruby s samp script
    search section select slot small source span strike strong style sub summary sup table tbody td template
    textarea tfoot th thead time title tr track tt u ul var video wbr xmp svg math image""".split()
)  # fmt: skip
_BLOCK_TAGS = frozenset({"div", "p", "center", "figure", "section", "article", "blockquote"})
_UNREAD = frozenset({"script", "style", "head", "title", "template", "svg", "math", "noscript", "select"})

_RENDERER_SRC = re.compile(r"mathjax|katex|tex-(?:mml-)?(?:chtml|svg)|tex-mml|mml-chtml", re.IGNORECASE)
_RENDERER_TEXT = re.compile(
    r"\bMathJax\s*(?:\.|=|\[)|window\.MathJax|\bkatex\s*\.\s*render|renderMathInElement|\btex2jax\b|MathJax\.typeset",
)
_CLASS_OPTION = re.compile(
    r"\b(ignoreClass|ignoreHtmlClass|processClass|processHtmlClass)['\"]?\s*:\s*(['\"])((?:\\.|(?!\2).){1,300})\2"
)
_LIST_OPTION = re.compile(r"\b(ignoredClasses|ignoredTags|skipTags|skipHtmlTags)['\"]?\s*:\s*\[([^\]]{0,600})\]")
_STRING = re.compile(r"(['\"])((?:\\.|(?!\1).){1,80})\1")


@dataclass(frozen=True)
class Renderer:
    """What the page loads to typeset math, and which parts of the page it leaves alone."""

    loaded: bool = False  # a MathJax or KaTeX renderer is loaded (script, bundle, stylesheet, call)
    ignore: str = DEFAULT_IGNORE  # class regex of regions the renderer skips
    process: str = DEFAULT_PROCESS  # class regex of regions processed inside skipped ones
    skip_tags: frozenset[str] = DEFAULT_SKIP_TAGS


def _js_unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _valid_regex(pattern: str, fallback: str) -> str:
    try:
        re.compile(pattern)
    except re.error:
        return fallback
    return pattern


def read_renderer(script_texts: list[str], script_srcs: list[str], style_texts: list[str] = (),
                  link_hrefs: list[str] = ()) -> Renderer:  # fmt: skip
    """The renderer set-up a page declares, read from its scripts, script URLs, styles and links.

    Guarantees: ``loaded`` is True only when some MathJax/KaTeX trace is present; class options
    replace the renderer's default (as they do in MathJax), ``ignoredClasses``/``ignoredTags``
    and ``skipTags`` are added to the defaults; an unparsable class regex keeps the default.
    """
    loaded = any(_RENDERER_SRC.search(s) for s in list(script_srcs) + list(link_hrefs) if s)
    ignore, process = [], []
    skip = set(DEFAULT_SKIP_TAGS)
    for text in script_texts:
        if not text:
            continue
        if not ("MathJax" in text or "katex" in text or "renderMathInElement" in text or "tex2jax" in text):
            continue  # a renderer's set-up names it
        if not loaded and _RENDERER_TEXT.search(text):
            loaded = True
        if "Class" not in text and "Tags" not in text:
            continue
        for m in _CLASS_OPTION.finditer(text):
            (ignore if m.group(1).startswith("ignore") else process).append(_js_unescape(m.group(3)))
        for m in _LIST_OPTION.finditer(text):
            values = [_js_unescape(s.group(2)) for s in _STRING.finditer(m.group(2))]
            if m.group(1) == "ignoredClasses":
                ignore.extend(re.escape(v) for v in values)
            else:
                skip.update(v.lower() for v in values if re.fullmatch(r"[A-Za-z][\w-]*", v))
    if not loaded:
        loaded = any(("KaTeX_" in s or "katex" in s or "MathJax" in s or "mjx-" in s) for s in style_texts if s)
    ignore_re = _valid_regex("|".join(f"(?:{p})" for p in ignore), DEFAULT_IGNORE) if ignore else DEFAULT_IGNORE
    process_re = _valid_regex("|".join(f"(?:{p})" for p in process), DEFAULT_PROCESS) if process else DEFAULT_PROCESS
    return Renderer(loaded=loaded, ignore=ignore_re, process=process_re, skip_tags=frozenset(skip))


# Lower-cased names of which one is on every page that ``read_renderer`` finds loaded.
_RENDERER_HINTS = (b"mathjax", b"katex", b"tex2jax", b"rendermathinelement", b"tex-chtml", b"tex-svg", b"tex-mml",
                   b"mml-chtml", b"mjx-")


def loads_math_renderer(html: str, lowered: bytes | None = None, max_chars: int = 4_000_000) -> bool:
    """Whether the page loads a MathJax or KaTeX renderer (``read_renderer(...).loaded`` over its
    scripts, styles and links), read from the raw HTML: the page-level math signal of a page whose
    formulas the extractor may not find (a forum that typesets TeX, a formula in an image). One
    function for both extraction tiers, so their rows agree. ``lowered``: the page's first
    ``max_chars`` (``html_math.MAX_HTML_CHARS``) characters as UTF-8, lower-cased, when the caller
    has them (the fast tier does), which leaves a page that names no renderer a few substring
    scans. Never raises (False on HTML that cannot be parsed)."""
    head = html[:max_chars]
    if lowered is None:
        lowered = head.encode("utf-8", "surrogatepass").lower()
    if not any(hint in lowered for hint in _RENDERER_HINTS):
        return False
    try:
        from resiliparse.parse.html import HTMLTree

        document = HTMLTree.parse(head).document
        if document is None:
            return False
        scripts = document.query_selector_all("script")
        return read_renderer([s.text or "" for s in scripts], [s.getattr("src") or "" for s in scripts],
                             [s.text or "" for s in document.query_selector_all("style")],
                             [ln.getattr("href") or "" for ln in document.query_selector_all("link")]).loaded
    except Exception:  # noqa: BLE001 - contract: a page that cannot be parsed loads nothing
        return False


# -- TeX evidence ---------------------------------------------------------------------------

_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[")
_TEXT_ARG = re.compile(r"\\(?:text\w*|math(?:rm|bf|it|sf|tt|cal|bb|frak)|operatorname\*?|mbox|hbox|label|tag)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_STRONG = re.compile(
    r"\\[A-Za-z]{2,}|[\^_]\s*\{|(?<![A-Za-z0-9])[A-Za-z][\^_][A-Za-z0-9]|[)}\]][\^_][A-Za-z0-9]|\^[0-9]"
)
_WORD = re.compile(r"[^\W\d_]{4,}")
_NOT_TEX = re.compile(r"://|www\.|@\w|[A-Za-z]{2}\.(?:com|org|net|html?|php|js|py|io)\b|^\s*[#/]|[;]\s*$|</?[a-z]|=>|\+\+|&&|\|\|")


def _balanced(text: str) -> bool:
    depth = 0
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def tex_evidence(text: str) -> int:
    """How surely ``text`` is, as a whole, one TeX formula: 2 strong (a control word, a brace
    group after ``^``/``_``, ``x_1``, ``n^2``), 1 compatible (short math-like text such as ``x``
    or ``f(x) = 1``, nothing against it), 0 not TeX (prose, a URL or code, unbalanced braces,
    ``$``/``\\(``/``\\[`` delimiters, which the text rewrite handles, or too long)."""
    text = text.strip()
    if not text or len(text) > MAX_TEX_ELEMENT_CHARS or _DELIMITED.search(text) or not _balanced(text):
        return 0
    if _NOT_TEX.search(text):
        return 0
    strong = bool(_STRONG.search(text))
    bare = _COMMAND.sub(" ", _TEXT_ARG.sub(" ", text))
    words = len(_WORD.findall(bare))
    if words > (max(1, len(text) // 40) if strong else 0):
        return 0  # prose: words outside \text{..}, \mathrm{..} and control words
    if not strong and len(bare.split()) > 8:
        return 0
    return 2 if strong else 1


_DOLLAR_PAIR = re.compile(r"(?<![\\$])\$(?!\$)([^$<>\n]{1,300}?)(?<![\\$])\$(?!\$)")
MIN_INFERRED_DOLLARS = 3  # TeX-bodied $..$ pairs needed to infer that a renderer reads $


def dollars_are_math(page_text: str, renderer: Renderer) -> bool:
    """Whether single ``$`` delimits math on a page whose configuration is not visible (loaded
    from a file or bundle): a renderer is loaded and at least ``MIN_INFERRED_DOLLARS`` ``$..$``
    pairs, and most of them, hold strong TeX (``\\alpha``, ``x^{2}``); prices never do."""
    if not renderer.loaded or page_text.count("$") < 2 * MIN_INFERRED_DOLLARS:
        return False
    strong = total = 0
    for m in _DOLLAR_PAIR.finditer(page_text):
        total += 1
        strong += tex_evidence(m.group(1).replace("&amp;", "&")) == 2
        if total > 400:
            break
    return strong >= MIN_INFERRED_DOLLARS and strong >= 0.5 * total


# -- the tree walk ----------------------------------------------------------------------------


@dataclass
class Regions:
    """What ``mark_regions`` found."""

    tex_elements: dict[etree._Element, bool] = field(default_factory=dict)  # element -> display
    code_blocks: int = 0
    inline_code: int = 0
    protected: int = 0  # text pieces in regions the renderer skips


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _wrap(el: etree._Element, opening: str, closing: str) -> None:
    """Put ``opening`` before the first and ``closing`` after the last non-blank text piece
    inside ``el`` (pieces, not ``el.text``, so that an extractor that reads the children of a
    ``<pre>`` sees the same structure)."""
    pieces: list[tuple[etree._Element, bool]] = []  # (node, is_text)
    for node in el.iter():
        if node.text and node.text.strip() and isinstance(node.tag, str):
            pieces.append((node, True))
        if node is not el and node.tail and node.tail.strip():
            pieces.append((node, False))
    if not pieces:
        return
    (first, first_text), (last, last_text) = pieces[0], pieces[-1]
    if first_text:
        first.text = opening + first.text
    else:
        first.tail = opening + first.tail
    if last_text:
        last.text = last.text + closing
    else:
        last.tail = last.tail + closing


_LINE_BLOCKS = frozenset({"div", "p", "li", "tr", "table", "ul", "ol", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6"})


def _code_text(el: etree._Element, parts: list[str]) -> None:
    """The text a browser shows for code ``el`` (``white-space: pre``): ``<br>`` and the
    boundaries of line blocks (a highlighter's ``<div class="line">``) are line breaks."""
    tag = _local(el.tag)
    if tag in ("br",):
        parts.append("\n")
    block = tag in _LINE_BLOCKS
    if block and parts and not parts[-1].endswith("\n"):
        parts.append("\n")
    if el.text and tag not in _UNREAD:
        parts.append(el.text)
    for child in el:
        if isinstance(child.tag, str):
            _code_text(child, parts)
        if child.tail:
            parts.append(child.tail)
    if block and parts and not parts[-1].endswith("\n"):
        parts.append("\n")


def _flatten_code(el: etree._Element) -> str:
    """Replace the children of code block ``el`` by their shown text (kept in ``el.text``)."""
    parts: list[str] = []
    _code_text(el, parts)
    text = "".join(parts)
    for child in list(el):
        el.remove(child)  # the tails went into ``text``
    el.text = text
    return text


def _protect(text: str | None, regions: Regions, hint: re.Pattern) -> str | None:
    """``text`` wrapped in the protect pair when it could hold delimited TeX."""
    if text and hint.search(text):
        regions.protected += 1
        return PROTECT_OPEN + text + PROTECT_CLOSE
    return text


_NON_SPACE = re.compile(r"\S")


def _in_prose(code: etree._Element) -> bool:
    """Whether inline ``code`` sits in prose: its parent holds text outside code elements.
    (A highlighter's line of token ``<code>`` elements is one piece of code, not inline code.)"""
    parent = code.getparent()
    if parent is None:
        return False
    total = len(_NON_SPACE.findall("".join(parent.itertext())))
    in_code = sum(len(_NON_SPACE.findall("".join(c.itertext()))) for c in parent if _local(c.tag) in _CODE_TAGS)
    return total - in_code >= 3


def _is_display(el: etree._Element, tag: str) -> bool:
    mode = (el.get("display") or el.get("mode") or "").lower()
    if mode in {"block", "true", "display"} or el.get("block") is not None:
        return True
    classes = (el.get("class") or "").lower()
    if "display" in classes or re.search(r"(?:^|[\s_-])block(?:$|[\s_-])", classes):
        return True
    return tag in _BLOCK_TAGS


def _mark_code(el: etree._Element, regions: Regions) -> None:
    text = "".join(el.itertext())
    if not text.strip():
        return
    if _local(el.tag) == "pre" or "\n" in text.strip():
        if len(el):
            _flatten_code(el)
        _wrap(el, CODE_OPEN, CODE_CLOSE)
        regions.code_blocks += 1
    elif _in_prose(el):
        _wrap(el, INLINE_CODE_OPEN, INLINE_CODE_CLOSE)
        regions.inline_code += 1


def _protect_region(region: etree._Element, process: re.Pattern | None, regions: Regions, hint: re.Pattern,
                    skipped: set[etree._Element]) -> None:  # fmt: skip
    """Protect the text of ``region`` (a part the renderer skips), except below a process class."""
    stack = [region]
    while stack:
        el = stack.pop()
        if not isinstance(el.tag, str) or el in skipped:
            continue
        classes = el.get("class")
        if process is not None and classes and el is not region and process.search(classes):
            continue  # processing is on again below a process class
        skipped.add(el)
        if _local(el.tag) not in _CODE_TAGS:  # code is marked as code already
            el.text = _protect(el.text, regions, hint)
            for child in el:
                child.tail = _protect(child.tail, regions, hint)
            stack.extend(el)


_SKIP_ANCESTORS = _UNREAD | _CODE_TAGS
_MATHML_TEXT = frozenset({"annotation", "annotation-xml"})  # TeX of a formula the rewrite reads, not text
_CLASSED = etree.XPath("//*[@class]")
_LITERAL = re.compile(r"[\w-]+")


def _named(pattern: str, page_html: str | None) -> bool:
    """Whether ``page_html`` may hold a class matching ``pattern`` (True when unknown).
    Alternations of plain names are looked up as substrings: a regex scan of a large page is slow."""
    if page_html is None:
        return True
    names = pattern.split("|")
    if all(_LITERAL.fullmatch(n) for n in names):
        return any(n in page_html for n in names)
    return re.search(pattern, page_html) is not None


def mark_regions(root: etree._Element, renderer: Renderer, delimiter_hint: re.Pattern,
                 page_html: str | None = None) -> Regions:  # fmt: skip
    """Mark code and skipped regions in ``root`` (in place) and find the TeX elements.

    Guarantees: every outermost ``<pre>`` is wrapped in ``CODE_OPEN``/``CODE_CLOSE`` (its
    children replaced by the text a browser shows: line breaks and indentation kept) and every
    ``<code>`` in prose outside a ``<pre>`` in the inline-code pair (one whose text spans lines
    counts as a block); in a region the renderer skips (ignore class, skip tag) each text piece
    that ``delimiter_hint`` matches is wrapped in ``PROTECT_OPEN``/``PROTECT_CLOSE`` (a process
    class inside turns processing back on); TeX elements are only looked for where the
    renderer reads. ``page_html``, when given, lets pages that never name an ignore class skip
    that search. The text of the tree is otherwise unchanged.
    """
    regions = Regions()
    codes = [el for el in root.iter(*_CODE_TAGS)]
    skipped: set[etree._Element] = set()
    for el in codes:
        if el in skipped or el.getroottree().getroot() is not root:
            continue  # inside a code element already marked (or removed by flattening)
        if next(el.iterancestors(*_CODE_TAGS), None) is not None:
            continue
        _mark_code(el, regions)
        skipped.update(el.iter())
    ignore = re.compile(rf"(?:^|\s)(?:{renderer.ignore})(?:\s|$)")
    process = re.compile(rf"(?:^|\s)(?:{renderer.process})(?:\s|$)")
    ignore_named = _named(renderer.ignore, page_html)
    process_named = _named(renderer.process, page_html)
    skip_tags = [t for t in renderer.skip_tags - _CODE_TAGS - _UNREAD - _MATHML_TEXT]
    region_roots = list(root.iter(*skip_tags)) if skip_tags else []
    if ignore_named:
        region_roots += [el for el in _CLASSED(root) if ignore.search(el.get("class"))]
    for region in region_roots:
        if process_named and region.get("class") and process.search(region.get("class")):
            continue
        _protect_region(region, process if process_named else None, regions, delimiter_hint, skipped)
    groups: dict[tuple, list[etree._Element]] = {}
    loaded = renderer.loaded
    for el in root.iter():  # a Python pass is faster here than an XPath leaf query
        tag = el.tag
        if tag in HTML_TAGS and not loaded:
            continue  # without a renderer only custom elements count
        if type(tag) is not str or tag in _SKIP_ANCESTORS or len(el) or not el.text or not el.text.strip():
            continue
        classes = el.get("class")
        if not (tag not in HTML_TAGS or classes) or el in skipped:
            continue
        groups.setdefault((tag, " ".join(sorted(classes.split())) if classes else ""), []).append(el)
    for (tag, _classes), members in groups.items():
        if not any(("\\" in el.text or "^" in el.text or "_" in el.text) for el in members):
            continue  # no member can be strong evidence
        evidence = [tex_evidence(el.text) for el in members]
        if 2 not in evidence or sum(1 for e in evidence if e) < 0.8 * len(members):
            continue
        for el, ev in zip(members, evidence):
            if ev and next(el.iterancestors(*_SKIP_ANCESTORS), None) is None:
                regions.tex_elements[el] = _is_display(el, _local(tag))
    return regions
