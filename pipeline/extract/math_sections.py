"""Put back the formula-bearing parts of the main content that the main-text extractor dropped.

Why: trafilatura decides paragraph by paragraph, from prose cues (text density, link density,
class names), what is main text. On math pages it often removes parts of the main content
whose prose is thin: a paragraph holding only a display formula, worked examples and exercise
boxes (``Simplify:``, a formula, ``Solution``, a display formula), a tutorial's exercise list,
all posts of a thread but one. Their formulas go with them.

Method (the caller runs it only when formulas may have been dropped):

1. List the page's text blocks in document order (``list_blocks``): leaf block elements
   (``p``, ``li``, ``td``, headings, a ``div`` without block children ...) and the bare text a
   block element holds between its block children. ``script``/``style``-like elements and
   hidden ones (``hidden``, ``aria-hidden``, ``display:none``, ``d-none``/``sr-only``-like
   classes) are not read; ``<br>`` is a line break.
2. Align the blocks with the extracted text, ignoring whitespace and invisible characters.
   Anchors: blocks of at least ``MIN_ANCHOR_CHARS`` whose places in the output form the
   heaviest chain in document order (so a table of contents or a repeated heading cannot pull
   the alignment away). Other blocks are searched in order between the anchors around them; a
   short block (``Answer``) only right at the cursor. A dropped formula block whose formulas
   are all in the output between its neighbours was only trimmed (a table cell) and is kept.
3. If every block holding a formula is kept, stop. Otherwise the *main container* is the
   deepest element holding at least ``CONTAINER_SHARE`` of the anchors' text. Formulas outside
   it (menus, tables of contents, sidebars) stay out.
4. Inside the container, each maximal run of consecutive dropped blocks is a candidate.
   Boilerplate blocks are removed from it: inside ``nav``/``aside``/``footer``/``header``/
   ``form``/``menu``/``dialog``, matched by trafilatura's own boilerplate rules
   (``trafilatura.xpaths.OVERALL_DISCARD_XPATH``, evaluated inside the container only), or
   link-dense (more than ``MAX_LINK_SHARE`` of the text in links). Of what remains, the span
   from the first to the last block holding a formula is put back, with the block just before
   it when that one introduces it (a heading, or text ending in ``:``).
5. Repeated items: when the container lies in an item that has alike siblings (same tag and
   at least half the classes: forum posts, answers), the counterpart of the container in each
   sibling is a region too, and its dropped runs holding a formula come back whole (minus
   boilerplate), since the extractor kept that same part of one item.
6. Each restored run is inserted, one block per line, after the output line of the nearest
   anchor of the main container before it, else before the nearest one after it, so the
   text stays in document order.

Guarantees: the extracted text is only added to, never changed; nothing outside the main
container and its counterparts, and nothing that trafilatura's boilerplate rules, hidden-ness
or link density mark, is added; a run comes back only if it holds a formula; a page whose
formula blocks are all kept comes back unchanged. Cost: one walk of the tree and a few
``str.find`` per block; pages with more than ``MAX_ALIGN_WORK`` blocks x output characters are
left as they are.

Departures: OpenWebMath modified its extractor's boilerplate rules instead; we keep
trafilatura's main-content choice and only add formula-bearing runs. Restored blocks lose list
bullets (one block per line); a table row whose cells hold no blocks is one line, its cells
separated by `` | `` as trafilatura writes them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml import etree

from .math_formulas import DISPLAY_OPEN, INLINE_OPEN

__all__ = [
    "CONTAINER_SHARE",
    "MAX_LINK_SHARE",
    "MIN_ANCHOR_CHARS",
    "TextBlock",
    "list_blocks",
    "restore_dropped_sections",
]

MIN_ANCHOR_CHARS = 20  # whitespace-free characters for a block to be matched anywhere
KEY_CHARS = 48  # characters of a block searched for (its start; its end is checked too)
MAX_OCCURRENCES = 16  # places a block may match in the output (repeated text)
# blocks x output characters above which a page is left as it is (each block is searched in
# the output: about a second of searching at most)
MAX_ALIGN_WORK = 2_000_000_000
SHORT_WINDOW = 24  # a short block is kept only if found this close to the alignment cursor
CONTAINER_SHARE = 0.8  # share of the kept text the main container must hold
MAX_LINK_SHARE = 0.5  # a block with more of its text in links is navigation
MAX_ITEM_DEPTH = 12  # levels above the container searched for a repeated item
MAX_ITEMS = 500  # sibling items looked at
ITEM_CLASS_SHARE = 0.5  # share of classes (Jaccard) two items of one repeated kind have in common
_ITEM_TAGS = frozenset({"article", "li", "section"})

BLOCK_TAGS = frozenset(
    {
        "address", "article", "blockquote", "caption", "center", "dd", "details", "dialog", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "menu", "nav", "ol", "p", "pre", "section",
        "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "aside", "body",
    }
)  # fmt: skip
UNREAD_TAGS = frozenset(
    {"script", "style", "noscript", "template", "head", "title", "meta", "link", "button", "select",
     "option", "textarea", "input", "iframe", "object", "embed", "svg", "canvas"}
)  # fmt: skip
BOILERPLATE_TAGS = frozenset({"nav", "aside", "footer", "header", "form", "menu", "dialog"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "dt", "summary", "caption"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
# utility classes of the common CSS frameworks (Bootstrap, Tailwind, Stacks, WordPress) that hide
HIDDEN_CLASSES = frozenset(
    {"d-none", "hidden", "hide", "is-hidden", "invisible", "sr-only", "visually-hidden", "screen-reader-text"}
)
# whitespace and the invisible characters extractors strip (soft hyphen, zero-width, BOM)
_INVISIBLE = "\u00ad\u200b-\u200f\u2028-\u202f\u2060-\u2064\ufeff"
_SPACE = re.compile(f"[\\s{_INVISIBLE}]+")
_VISIBLE_RUN = re.compile(f"[^\\s{_INVISIBLE}]+")
_LINE_SPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n[\s]*")


def _fold(text: str) -> str:
    """Whitespace folded to single spaces, line breaks (from ``<br>``) kept, ends stripped."""
    return _NEWLINES.sub("\n", _LINE_SPACE.sub(" ", text)).strip()


@dataclass
class TextBlock:
    """One block of page text in document order (see the module docstring)."""

    element: etree._Element  # the block element; for bare text between blocks, its parent
    text: str  # whitespace folded
    key: str  # whitespace removed: what is searched in the output
    leaf: bool  # a whole element (False: bare text between the block children of ``element``)
    span: tuple[int, int] | None = None  # where it was found in the whitespace-free output
    anchor: bool = False  # found in document order (a place to insert next to)


def _tag(el: object) -> str:
    tag = getattr(el, "tag", None)
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def is_hidden(el: etree._Element) -> bool:
    """Whether ``el`` is not shown: ``hidden``/``aria-hidden``, an inline ``display:none`` or
    ``visibility:hidden`` style, or a hiding utility class (``HIDDEN_CLASSES``)."""
    if el.get("hidden") is not None or el.get("aria-hidden") == "true":
        return True
    style = el.get("style")
    if style and _HIDDEN_STYLE.search(style):
        return True
    classes = el.get("class")
    return bool(classes) and not HIDDEN_CLASSES.isdisjoint(classes.split())


def _unread(el: etree._Element) -> bool:
    tag = _tag(el)
    return not tag or tag in UNREAD_TAGS or is_hidden(el)


def _inline_text(el: etree._Element, parts: list[str]) -> None:
    if _unread(el):
        return
    if _tag(el) == "br":
        parts.append("\n")
    if el.text:
        parts.append(el.text)
    for child in el:
        _inline_text(child, parts)
        if child.tail:
            parts.append(child.tail)


def _elements_holding_blocks(root: etree._Element) -> set[etree._Element]:
    """Every element that is, or has below it, a block element (one pass up from each block)."""
    holding: set[etree._Element] = set()
    for el in root.iter():
        if _tag(el) in BLOCK_TAGS and el not in holding:
            node = el
            while node is not None and node not in holding:
                holding.add(node)
                node = node.getparent()
    return holding


def list_blocks(root: etree._Element) -> list[TextBlock]:
    """The text blocks of ``root`` in document order (empty blocks left out)."""
    holding = _elements_holding_blocks(root)
    blocks: list[TextBlock] = []

    def flush(parts: list[str], el: etree._Element, leaf: bool) -> None:
        text = _fold("".join(parts))
        if text:
            blocks.append(TextBlock(el, text, _SPACE.sub("", text), leaf))

    def walk(el: etree._Element) -> None:
        if _tag(el) == "tr" and not any(c in holding for cell in el for c in cell):
            cells = []
            for cell in el:
                if _tag(cell) in ("td", "th") and not _unread(cell):
                    parts = []
                    _inline_text(cell, parts)
                    cells.append(_fold("".join(parts)))
            if any(cells):  # a table row is one line, its cells separated by " | "
                flush([" | ".join(cells)], el, True)
            return
        if el not in holding or (_tag(el) in BLOCK_TAGS and not any(c in holding for c in el)):
            parts: list[str] = []
            _inline_text(el, parts)
            flush(parts, el, True)
            return
        parts = [el.text or ""]
        for child in el:
            if _unread(child):
                pass
            elif child in holding:
                flush(parts, el, False)
                parts = []
                walk(child)
            else:
                _inline_text(child, parts)
            if child.tail:
                parts.append(child.tail)
        flush(parts, el, False)

    if not _unread(root):
        walk(root)
    return blocks


def _occurrences(squeezed: str, key: str, limit: int = MAX_OCCURRENCES) -> list[tuple[int, int]]:
    """Spans where ``key`` occurs in ``squeezed`` (at most ``limit``), found by its first or
    else its last ``KEY_CHARS`` characters: the extractor may cut or change one end of a block."""
    head, tail = key[:KEY_CHARS], key[-KEY_CHARS:]
    spans: list[tuple[int, int]] = []
    pos = squeezed.find(head)
    while pos >= 0 and len(spans) < limit:
        if squeezed.startswith(key, pos):
            spans.append((pos, pos + len(key)))
        else:
            end = squeezed.find(tail, pos, pos + 2 * len(key) + KEY_CHARS)
            spans.append((pos, end + len(tail) if end >= 0 else pos + len(head)))
        pos = squeezed.find(head, pos + 1)
    if spans or len(key) <= KEY_CHARS:
        return spans
    pos = squeezed.find(tail)
    while pos >= 0 and len(spans) < limit:
        spans.append((max(0, pos + len(tail) - len(key)), pos + len(tail)))
        pos = squeezed.find(tail, pos + 1)
    return spans


def _heaviest_chain(candidates: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The heaviest chain of ``(block, start, end, weight)`` candidates, sorted by block then
    decreasing start, in which blocks and non-overlapping spans both increase (one candidate
    per block). O(n log n) with a Fenwick tree of prefix maxima over span ends."""
    coords = sorted({c[2] for c in candidates} | {c[1] for c in candidates})
    rank = {v: i + 1 for i, v in enumerate(coords)}
    size = len(coords)
    tree_best = [0] * (size + 1)
    tree_arg = [-1] * (size + 1)
    best = [0] * len(candidates)
    back = [-1] * len(candidates)
    for n, (_block, start, end, weight) in enumerate(candidates):
        i, top, arg = rank[start], 0, -1  # best chain whose last end <= start
        while i > 0:
            if tree_best[i] > top:
                top, arg = tree_best[i], tree_arg[i]
            i -= i & -i
        best[n], back[n] = top + weight, arg
        i = rank[end]
        while i <= size:
            if best[n] > tree_best[i]:
                tree_best[i], tree_arg[i] = best[n], n
            i += i & -i
    if not candidates:
        return []
    n = max(range(len(candidates)), key=best.__getitem__)
    chain = []
    while n >= 0:
        chain.append(candidates[n])
        n = back[n]
    return chain[::-1]


def _align(blocks: list[TextBlock], squeezed: str) -> None:
    """Set ``span`` on each block found in the whitespace-free output, in order.

    Anchors first: the blocks of at least ``MIN_ANCHOR_CHARS`` whose occurrences form the
    heaviest in-order chain (so that a table of contents or a repeated heading cannot pull
    the alignment away). Then every other block is searched in order between the anchors
    around it. A long block that is found nowhere in order but somewhere in the output counts
    as kept (out of order, e.g. moved comments): putting text back twice is worse than not
    putting it back.
    """
    candidates: list[tuple[int, int, int, int]] = []
    for b, block in enumerate(blocks):
        block.span, block.anchor = None, False
        if len(block.key) >= MIN_ANCHOR_CHARS:
            spans = _occurrences(squeezed, block.key)
            candidates.extend((b, s, e, len(block.key)) for s, e in sorted(spans, reverse=True))
    anchors = {b: (s, e) for b, s, e, _w in _heaviest_chain(candidates)}
    cursor, limit = 0, 0
    next_anchor = sorted(anchors)
    k = 0
    for b, block in enumerate(blocks):
        if b in anchors:
            block.span, block.anchor = anchors[b], True
            cursor = block.span[1]
            k += 1
            continue
        while k < len(next_anchor) and next_anchor[k] < b:
            k += 1
        limit = anchors[next_anchor[k]][0] if k < len(next_anchor) else len(squeezed)
        key = block.key
        if len(key) < MIN_ANCHOR_CHARS:
            pos = squeezed.find(key, cursor, min(limit, cursor + SHORT_WINDOW + len(key)))
            if pos >= 0:
                block.span, block.anchor = (pos, pos + len(key)), True
                cursor = block.span[1]
            continue
        span = next((sp for sp in _occurrences(squeezed[:limit], key) if sp[0] >= cursor), None)
        if span is not None:
            block.span, block.anchor = span, True
            cursor = span[1]
        elif _occurrences(squeezed, key, 1):
            block.span = (cursor, cursor)  # kept, out of order: not a place to insert next to


_FORMULA_PIECE = re.compile(
    r"[\u2983\u2985][^\u2983-\u2986]*[\u2984\u2986]|\\\(.+?\\\)|\\\[.+?\\\]|\$\$.+?\$\$"
    r"|\\begin\{([a-zA-Z]+\*?)\}.+?\\end\{\1\}",
    re.DOTALL,
)


def _mark_partly_kept(blocks: list[TextBlock], formula: list[bool], squeezed: str) -> None:
    """Count as kept a dropped formula block whose formulas are all in the output between the
    kept blocks around it: the extractor kept the math and changed or cut the text around it
    (a table cell whose trailing text it dropped). Putting it back would write it twice."""
    starts = [b.span[0] if b.anchor else None for b in blocks]
    prev_end = 0
    next_start: list[int] = [len(squeezed)] * len(blocks)
    following = len(squeezed)
    for i in range(len(blocks) - 1, -1, -1):
        next_start[i] = following
        if starts[i] is not None:
            following = starts[i]
    for i, block in enumerate(blocks):
        if block.anchor:
            prev_end = block.span[1]
            continue
        if block.span is not None or not formula[i]:
            continue
        pieces = [_SPACE.sub("", m.group(0)) for m in _FORMULA_PIECE.finditer(block.text)]
        window = squeezed[prev_end : next_start[i]]
        if pieces and all(piece in window for piece in pieces):
            block.span = (prev_end, prev_end)


def _main_container(blocks: list[TextBlock]) -> etree._Element | None:
    """The deepest element holding at least ``CONTAINER_SHARE`` of the kept anchor text."""
    weight: dict[etree._Element, int] = {}
    total = 0
    for block in blocks:
        if block.span is None or len(block.key) < MIN_ANCHOR_CHARS:
            continue
        total += len(block.key)
        node = block.element
        while node is not None:
            weight[node] = weight.get(node, 0) + len(block.key)
            node = node.getparent()
    if not total:
        return None
    best, best_depth = None, -1
    for el, w in weight.items():
        if w >= CONTAINER_SHARE * total:
            depth = sum(1 for _ in el.iterancestors())
            if depth > best_depth:
                best, best_depth = el, depth
    return best


def _boilerplate_elements(container: etree._Element) -> set[etree._Element]:
    """Elements inside ``container`` (not itself) that mark boilerplate (module docstring, 4)."""
    marked: set[etree._Element] = set()
    for el in container.iterdescendants():
        if not isinstance(el.tag, str):
            continue
        if _tag(el) in BOILERPLATE_TAGS:
            marked.add(el)
    try:
        from trafilatura.xpaths import OVERALL_DISCARD_XPATH
    except ImportError:  # pragma: no cover - the rules moved in another trafilatura version
        return marked
    for xpath in OVERALL_DISCARD_XPATH:
        try:
            marked.update(xpath(container))
        except etree.XPathError:  # pragma: no cover - defensive: a rule this lxml cannot run
            continue
    return marked


def _link_share(block: TextBlock) -> float:
    if not block.leaf:
        return 0.0
    linked = sum(len(_SPACE.sub("", "".join(a.itertext()))) for a in block.element.iter("a"))
    return linked / max(1, len(block.key))


def _under(el: etree._Element, marked: set[etree._Element], stop: etree._Element) -> bool:
    node = el
    while node is not None and node is not stop:
        if node in marked:
            return True
        node = node.getparent()
    return False


def _introduces(block: TextBlock) -> bool:
    return (block.leaf and _tag(block.element) in _HEADINGS) or block.text.endswith(":")


class _Squeezed:
    """``text`` without whitespace and invisible characters, and the way back to positions in
    ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text
        runs = [(m.start(), m.end()) for m in _VISIBLE_RUN.finditer(text)]
        self.orig_starts = [s for s, _ in runs]
        self.sq_starts: list[int] = []
        total = 0
        for s, e in runs:
            self.sq_starts.append(total)
            total += e - s
        self.squeezed = "".join(text[s:e] for s, e in runs)

    def original(self, pos: int) -> int:
        """Index in ``text`` of the character at ``pos`` of the squeezed text (or ``len``)."""
        if pos >= len(self.squeezed):
            return len(self.text)
        i = bisect.bisect_right(self.sq_starts, pos) - 1
        return self.orig_starts[i] + (pos - self.sq_starts[i])


def restore_dropped_sections(text: str, blocks: list[TextBlock], has_formula: Callable[[str], bool]) -> tuple[str, int]:
    """``text`` with the dropped formula-bearing spans of the main container (and of the
    items repeating it) put back (see the module docstring), and the number of blocks put
    back. ``blocks`` come from ``list_blocks`` on the formula-rewritten tree; ``has_formula``
    tells whether a block's text holds a formula (sentinel-marked or delimited TeX)."""
    if not text or not blocks:
        return text, 0
    formula = [has_formula(b.text) for b in blocks]
    if not any(formula):
        return text, 0
    sq = _Squeezed(text)
    if len(blocks) * len(sq.squeezed) > MAX_ALIGN_WORK:
        return text, 0  # bounded cost: such a page keeps the extractor's text as it is
    _align(blocks, sq.squeezed)
    _mark_partly_kept(blocks, formula, sq.squeezed)
    if all(b.span is not None for b, f in zip(blocks, formula) if f):
        return text, 0
    container = _main_container(blocks)
    if container is None:
        return text, 0
    index_of: dict[etree._Element, list[int]] = {}
    for i, b in enumerate(blocks):
        index_of.setdefault(b.element, []).append(i)

    def blocks_in(region: etree._Element) -> list[int]:
        return sorted(i for el in region.iter() for i in index_of.get(el, ()))

    scope = [i for i in blocks_in(container) if blocks[i].anchor]
    regions = [(container, False)] + [(item, True) for item in _repeated_items(container)]
    insertions: list[tuple[int, int, str]] = []
    for region, whole in regions:
        inside = blocks_in(region)
        if not inside:
            continue
        marked = _boilerplate_elements(region)
        for start, end in _runs(inside, blocks):
            run = [
                i
                for i in inside[start:end]
                if not _under(blocks[i].element, marked, region) and _link_share(blocks[i]) <= MAX_LINK_SHARE
            ]
            with_formula = [i for i in run if formula[i]]
            if not with_formula:
                continue
            if not whole:
                first, last = with_formula[0], with_formula[-1]
                lead = [i for i in run if i < first]
                run = [i for i in run if first <= i <= last]
                if lead and lead[-1] == first - 1 and _introduces(blocks[lead[-1]]):
                    run.insert(0, lead[-1])
            pos = _insertion_point(sq, blocks, inside[start], inside[end - 1], scope)
            if pos is not None:
                insertions.append((pos, inside[start], "\n".join(blocks[i].text for i in run)))
    if not insertions:
        return text, 0
    out: list[str] = []
    prev = 0
    restored = 0
    for pos, _order, chunk in sorted(insertions):
        out.append(text[prev:pos])
        lead_nl = "" if pos == 0 or text[pos - 1] == "\n" else "\n"
        trail_nl = "" if pos == len(text) or text[pos] == "\n" else "\n"
        out.append(lead_nl + chunk + trail_nl)
        prev = pos
        restored += chunk.count("\n") + 1
    out.append(text[prev:])
    return "".join(out), restored


def _runs(inside: list[int], blocks: list[TextBlock]) -> Iterable[tuple[int, int]]:
    """``(start, end)`` ranges of ``inside`` (block indices) over which blocks are dropped."""
    i = 0
    while i < len(inside):
        if blocks[inside[i]].span is not None:
            i += 1
            continue
        j = i
        while j < len(inside) and blocks[inside[j]].span is None:
            j += 1
        yield i, j
        i = j


def _class_tokens(el: etree._Element) -> frozenset[str]:
    """The element's classes, without the ones that number it (``js-post-56616``)."""
    return frozenset(c for c in (el.get("class") or "").split() if not any(ch.isdigit() for ch in c))


def _alike(a: etree._Element, b: etree._Element) -> bool:
    """Same tag, and classes shared at least half (Jaccard), or both ``article``/``li``/
    ``section`` without a class: the test for items of one repeated kind."""
    if _tag(a) != _tag(b):
        return False
    ca, cb = _class_tokens(a), _class_tokens(b)
    if not ca and not cb:
        return _tag(a) in _ITEM_TAGS
    return len(ca & cb) >= ITEM_CLASS_SHARE * len(ca | cb)


def _repeated_items(container: etree._Element) -> list[etree._Element]:
    """The counterparts of ``container`` in the items that repeat the one holding it.

    A forum thread or a Q&A page is a list of like items (posts, answers; see ``_alike``);
    when the extractor keeps one item's body and drops the others, this finds, in each
    sibling item, the element in the place of ``container`` (alike elements on the way down).
    Looks at most ``MAX_ITEM_DEPTH`` levels up, below ``body``, and at most ``MAX_ITEMS``
    siblings.
    """
    path: list[etree._Element] = []
    node = container
    for _ in range(MAX_ITEM_DEPTH):
        parent = node.getparent()
        if parent is None or _tag(parent) in {"body", "html"}:
            return []
        siblings = [c for c in parent if c is not node and _alike(c, node)][:MAX_ITEMS]
        found = [t for t in (_follow(sibling, path) for sibling in siblings) if t is not None]
        if found:
            return found
        path.insert(0, node)
        node = parent
    return []


def _follow(item: etree._Element, path: list[etree._Element]) -> etree._Element | None:
    """The element reached from ``item`` by descending through elements alike the ones of
    ``path`` (the first alike descendant at each step; steps without a class are skipped, so
    the result may be the nearest classed element above the exact counterpart)."""
    node = item
    for step in path:
        if not _class_tokens(step):
            continue  # a wrapper without a class: too common to follow, look past it
        node = next((c for c in node.iterdescendants() if _alike(c, step)), None)
        if node is None:
            return None
    return node


def _insertion_point(sq: _Squeezed, blocks: list[TextBlock], first: int, last: int, scope: list[int]) -> int | None:
    """Where the dropped blocks ``first..last`` go in the output: at the end of the line of
    the nearest in-order kept block of the main container before them (``scope``: their
    indices, ascending), else at the start of the line of the nearest one after them."""
    k = bisect.bisect_left(scope, first)
    if k > 0:
        idx = sq.original(blocks[scope[k - 1]].span[1] - 1) + 1
        newline = sq.text.find("\n", idx)
        return len(sq.text) if newline < 0 else newline
    k = bisect.bisect_right(scope, last)
    if k < len(scope):
        idx = sq.original(blocks[scope[k]].span[0])
        return sq.text.rfind("\n", 0, idx) + 1
    return None


def has_marked_formula(text: str) -> bool:
    """Whether ``text`` holds a formula the tree rewrite marked."""
    return INLINE_OPEN in text or DISPLAY_OPEN in text
