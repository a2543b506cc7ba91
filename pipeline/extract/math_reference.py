"""An independent finder of the formulas in an HTML page's source, and the retention measure.

This module is a *measuring instrument* for the benchmark and the tests, not part of the
extractor: it reads the raw HTML with regular expressions (the extractor walks an lxml tree)
so that the two do not share mistakes. It answers "which formulas does this page hold?" and
"what share of them does an extracted text keep?".

What counts as a formula in the source (each is deduplicated per page after normalisation):

* the body of ``<script type="math/tex">`` (any ``; mode=...``), ``math/asciimath`` and
  ``math/mml`` scripts;
* ``<annotation encoding="application/x-tex">`` bodies and ``alttext`` of ``<math>``; a
  ``<math>`` element with neither is counted through its MathML token text;
* ``data-tex`` / ``data-latex`` / ``data-expr`` / ``data-formula`` attributes;
* TeX in images: the ``alt`` of images served by a LaTeX renderer (codecogs, mimetex,
  mathtex, ``latex.php``, Google chart ``cht=tx``) or marked as math by their class
  (``mwe-math-fallback-image``, Sphinx ``img.math``, ``latex``), else the TeX in the URL query;
* TeX held as text between the delimiters the page's MathJax/KaTeX understands:
  ``\\(..\\)``, ``\\[..\\]``, ``$$..$$``, ``\\begin{env}..\\end{env}`` always, plus the
  inline/display pairs configured in the page's script (e.g. ``['$','$']``, ``['##','##']``,
  ``['[itex]','[/itex]']``), and AsciiMath between backticks when the page loads ASCIIMathML;
* TeX written as the whole text of an element a script typesets: a custom element (a tag
  with a hyphen, ``<d-math>``) or a classed element on a page that loads MathJax or KaTeX
  (its name appears in the source), whose text holds a control word or a ``^{``/``_{`` group,
  has balanced braces and no delimiters; outside ``<pre>``/``<code>``.

Retention compares a normalised form (entities decoded, whitespace, braces and
``\\displaystyle``-like style switches removed) of each source formula with the math found
in the output text. MathML-only and AsciiMath formulas cannot be compared as TeX; they are
compared through a "loose signature" (digits, variable letters and function/Greek names).
"""

from __future__ import annotations

import html as html_lib
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "SourceFormula",
    "find_source_formulas",
    "formula_retained",
    "loose_signature",
    "normalize_tex",
    "output_math_segments",
    "retention",
    "strip_output_math",
]

_FLAGS = re.IGNORECASE | re.DOTALL


@dataclass(frozen=True)
class SourceFormula:
    """One formula found in a page source: its text, and how it must be compared."""

    text: str
    kind: str  # "tex" | "mathml" | "asciimath"
    origin: str  # which mechanism found it (for per-page explanations)


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", _FLAGS)
_STYLE = re.compile(r"<style\b[^>]*>.*?</style\s*>", _FLAGS)
_NOSCRIPT = re.compile(r"<noscript\b[^>]*>.*?</noscript\s*>", _FLAGS)
_MATH_EL = re.compile(r"<((?:\w+:)?math)\b([^>]*)>(.*?)</\1\s*>", _FLAGS)
_ANNOTATION = re.compile(
    r"<(?:\w+:)?annotation\b[^>]*encoding\s*=\s*[\"'](?:application/x-tex|text/x-latex|tex|latex)[\"'][^>]*>(.*?)</(?:\w+:)?annotation\s*>",
    _FLAGS,
)
_ATTR = r"\b{name}\s*=\s*(?:\"([^\"]*)\"|'([^']*)')"
_ALTTEXT = re.compile(_ATTR.format(name="alttext"), _FLAGS)
_DATA_TEX = re.compile(_ATTR.format(name=r"data-(?:tex|latex|expr|formula)"), _FLAGS)
_IMG = re.compile(r"<img\b([^>]*)>", _FLAGS)
_TOKEN = re.compile(r"<(?:\w+:)?(?:mi|mn|mo|mtext|ms)\b[^>]*>(.*?)</(?:\w+:)?(?:mi|mn|mo|mtext|ms)\s*>", _FLAGS)
_TAG = re.compile(r"<[^>]+>")
_LATEX_IMG_SRC = re.compile(
    r"codecogs\.com|mimetex|mathtex|latex\.php|/latex\?|cht=tx|latex\.artofproblemsolving|/math/render|wp\.com/latex",
    re.IGNORECASE,
)
_LATEX_IMG_CLASS = re.compile(r"mwe-math-fallback|\bmath\b|\blatex\b|\btex\b", re.IGNORECASE)


def _attr(attrs: str, name: str) -> str | None:
    m = re.search(_ATTR.format(name=re.escape(name)), attrs, _FLAGS)
    if not m:
        return None
    return html_lib.unescape(m.group(1) if m.group(1) is not None else m.group(2))


def _configured_pairs(scripts: list[str]) -> list[tuple[str, str]]:
    """Extra delimiter pairs the page configures for MathJax (``inlineMath``) or KaTeX (``left``/``right``)."""
    pairs: list[tuple[str, str]] = []
    joined = "\n".join(scripts)
    for m in re.finditer(r"(?:inlineMath|displayMath)\s*[:=]\s*(\{[^}]*\}|\[(?:[^\[\]]|\[[^\[\]]*\])*\])", joined):
        for left, right in re.findall(r"\[\s*['\"]([^'\"]{1,12})['\"]\s*,\s*['\"]([^'\"]{1,12})['\"]\s*\]", m.group(1)):
            pairs.append((left.replace("\\\\", "\\"), right.replace("\\\\", "\\")))
    for m in re.finditer(
        r"left['\"]?\s*:\s*['\"]([^'\"]{1,16})['\"]\s*,\s*['\"]?right['\"]?\s*:\s*['\"]([^'\"]{1,16})['\"]", joined
    ):
        pairs.append((m.group(1).replace("\\\\", "\\"), m.group(2).replace("\\\\", "\\")))
    return pairs


_MACRO_DEFINITION = re.compile(r"\s*\\(?:newcommand|renewcommand|def|DeclareMathOperator|require|let)\b")
_STANDARD_PAIRS = [("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)")]
_ENV = re.compile(r"\\begin\{([a-zA-Z]+\*?)\}.{0,10000}?\\end\{\1\}", re.DOTALL)


def _text_formulas(text: str, pairs: list[tuple[str, str]]) -> list[str]:
    found: list[str] = []
    ordered = sorted(set(pairs) | set(_STANDARD_PAIRS), key=lambda p: -len(p[0]))
    for left, right in ordered:
        # "\$" is an escaped dollar, never a delimiter
        lpat = re.escape(left) if left != "$" else r"(?<![\\$])\$(?!\$)"
        rpat = re.escape(right) if right != "$" else r"(?<!\\)\$"
        limit = 4000 if left != "$" else 400
        for m in re.finditer(f"{lpat}(.{{1,{limit}}}?){rpat}", text, re.DOTALL):
            body = m.group(1)
            if left == "$" and ("\n\n" in body or not _looks_like_tex(body)):
                continue
            found.append(body)
        text = re.sub(f"{lpat}.{{1,{limit}}}?{rpat}", " ", text, flags=re.DOTALL)
    found.extend(m.group(0) for m in _ENV.finditer(text))
    return found


_CODE_EL = re.compile(r"<(pre|code|textarea)\b[^>]*>.*?</\1\s*>", _FLAGS)
_LEAF_EL = re.compile(r"<([a-zA-Z][\w-]*)\b([^>]*)>([^<]{1,4000})</\1\s*>", re.DOTALL)
_TEX_SIGNAL = re.compile(r"\\[a-zA-Z]{2,}|[\^_]\{")
_RENDERER = re.compile(r"katex|mathjax", re.IGNORECASE)


def _element_formulas(rest: str, renderer_loaded: bool) -> list[str]:
    """Whole-text TeX of custom or (on a renderer page) classed leaf elements."""
    found = []
    for m in _LEAF_EL.finditer(_CODE_EL.sub(" ", rest)):
        tag, attrs, body = m.group(1).lower(), m.group(2), html_lib.unescape(m.group(3))
        if tag in {"annotation", "title", "option", "textarea", "style", "script"}:
            continue
        if not ("-" in tag or (renderer_loaded and re.search(r"\bclass\s*=", attrs, re.IGNORECASE))):
            continue
        if re.search(r"(?<!\\)\$|\\\(|\\\[", body) or not _TEX_SIGNAL.search(body):
            continue
        if body.count("{") != body.count("}") or len(re.findall(r"[^\W\d_]{4,}", re.sub(r"\\[a-zA-Z]+(?:\{[^{}]*\})?", " ", body))) > 2:
            continue  # unbalanced, or prose
        found.append(body)
    return found


def _looks_like_tex(body: str) -> bool:
    body = body.strip()
    return bool(body) and (bool(re.search(r"[\\^_=+<>{}]", body)) or len(body) <= 3)


def find_source_formulas(page_html: str) -> list[SourceFormula]:
    """All distinct formulas in ``page_html`` (see the module docstring for what counts)."""
    found: dict[str, SourceFormula] = {}

    def add(text: str | None, kind: str, origin: str) -> None:
        if text is None:
            return
        text = text.strip()
        key = normalize_tex(text) if kind == "tex" else loose_signature(text, kind)
        if len(key) == 0 or text.lower() in {"null", "undefined"} or key in {"\\begingroup", "\\endgroup"}:
            return
        if kind == "tex" and _MACRO_DEFINITION.match(text):
            return  # MathJax macro definitions (often in a hidden block) are set-up, not content
        found.setdefault(f"{kind}:{key}", SourceFormula(text, kind, origin))

    src = _COMMENT.sub(" ", page_html)
    scripts = []
    for m in _SCRIPT.finditer(src):
        typ = (_attr(m.group(1), "type") or "").lower()
        body = m.group(2)
        if re.match(r"(?:math|text)/(?:x-)?(?:la)?tex\b", typ):
            add(body, "tex", "script math/tex")
        elif typ.startswith("math/asciimath"):
            add(body, "asciimath", "script math/asciimath")
        elif typ.startswith("math/mml"):
            add(_mathml_tokens(body), "mathml", "script math/mml")
        else:
            scripts.append(body)
    uses_asciimath = bool(
        re.search(
            r"asciimathml|asciimath\.js|/asciimath|AM\.init|asciimath2",
            "\n".join(scripts) + src[:200000],
            re.IGNORECASE,
        )
    )
    pairs = _configured_pairs(scripts + [m.group(0) for m in re.finditer(r"<script\b[^>]*>", src, _FLAGS)])
    rest = _SCRIPT.sub(" ", src)
    rest = _STYLE.sub(" ", rest)
    rest = _NOSCRIPT.sub(" ", rest)

    def math_element(m: re.Match) -> str:
        attrs, inner = m.group(2), m.group(3)
        tex = [html_lib.unescape(a) for a in _ANNOTATION.findall(inner)]
        alt = _attr(attrs, "alttext")
        for t in tex:
            add(t, "tex", "MathML annotation")
        if alt:
            add(alt, "tex", "MathML alttext")
        if not tex and not alt:
            add(_mathml_tokens(inner), "mathml", "MathML")
        return " "

    rest = _MATH_EL.sub(math_element, rest)
    for body in _element_formulas(rest, bool(_RENDERER.search(src))):
        add(body, "tex", "TeX element")
    for m in _DATA_TEX.finditer(rest):
        add(html_lib.unescape(m.group(1) if m.group(1) is not None else m.group(2)), "tex", "data attribute")
    for m in _IMG.finditer(rest):
        attrs = m.group(1)
        src_url = _attr(attrs, "src") or ""
        klass = _attr(attrs, "class") or ""
        if not (_LATEX_IMG_SRC.search(src_url) or _LATEX_IMG_CLASS.search(klass)):
            continue
        alt = (_attr(attrs, "alt") or "").strip()
        if alt.startswith("$") and alt.endswith("$"):
            alt = alt.strip("$")
        if alt and _looks_like_formula_alt(alt):
            add(alt, "tex", "image alt")
        elif "?" in src_url and _LATEX_IMG_SRC.search(src_url):
            add(unquote(src_url.split("?", 1)[1].replace("&space;", " ")), "tex", "image URL")
    text = html_lib.unescape(_TAG.sub(" ", rest))
    for body in _text_formulas(text, pairs):
        add(body, "tex", "TeX in text")
    if uses_asciimath:
        for m in re.finditer(r"(?<![\\`])`([^`\n]{1,300}?)(?<!\\)`", text):
            add(m.group(1), "asciimath", "AsciiMath in text")
    return list(found.values())


def _looks_like_formula_alt(alt: str) -> bool:
    return bool(re.search(r"[\\^_={}+\-=<>()0-9]", alt)) or len(alt) <= 3


def _mathml_tokens(inner: str) -> str:
    return " ".join(html_lib.unescape(_TAG.sub("", t)).strip() for t in _TOKEN.findall(inner))


_STYLE_SWITCH = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|scriptscriptstyle)(?![a-zA-Z])")


def normalize_tex(tex: str) -> str:
    """A whitespace-, brace- and style-insensitive form of a TeX string, for comparison."""
    tex = html_lib.unescape(tex)
    tex = _STYLE_SWITCH.sub("", tex)
    tex = tex.replace("\u2212", "-")
    return re.sub(r"[\s{}]+", "", tex)


_FUNCTION_NAMES = {
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "sinh",
    "cosh",
    "tanh",
    "log",
    "ln",
    "exp",
    "lim",
    "max",
    "min",
    "sup",
    "inf",
    "det",
    "dim",
    "ker",
    "arg",
    "deg",
    "gcd",
    "arcsin",
    "arccos",
    "arctan",
}
_GREEK = {
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Pi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
}
_KEEP_NAMES = _FUNCTION_NAMES | _GREEK
_ASCIIMATH_WORDS = {
    "sqrt",
    "root",
    "frac",
    "sum",
    "prod",
    "int",
    "oint",
    "oo",
    "xx",
    "in",
    "and",
    "or",
    "if",
    "not",
    "del",
    "grad",
    "hat",
    "bar",
    "vec",
    "dot",
    "ddot",
    "ul",
    "abs",
    "floor",
    "ceil",
    "norm",
    "text",
    "mod",
    "lt",
    "gt",
    "le",
    "ge",
    "ne",
    "to",
    "cdot",
    "pm",
    "mp",
    "ldots",
    "cdots",
    "quad",
    "AA",
    "EE",
    "RR",
    "NN",
    "ZZ",
    "QQ",
    "CC",
    "sub",
    "sup",
    "sube",
    "supe",
    "uu",
    "nn",
    "vv",
    "darr",
    "uarr",
    "rarr",
    "larr",
    "harr",
    "rArr",
    "lArr",
    "hArr",
    "iff",
    "implies",
    "bb",
    "cc",
    "tt",
    "fr",
    "sf",
    "color",
    "cancel",
    "obrace",
    "ubrace",
    "overset",
    "underset",
    "stackrel",
    "dx",
    "dy",
    "dt",
}


def loose_signature(text: str, kind: str = "tex") -> str:
    """Digits, variable letters and Greek/function names of a formula, in order.

    Used to compare formulas whose source is not TeX (MathML tokens, AsciiMath) with the
    TeX an extractor wrote for them: ``x=(-b +- sqrt(b^2-4ac))/(2a)`` and
    ``x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}`` both give ``xbb24ac2a``.
    """
    text = html_lib.unescape(text)
    out: list[str] = []
    if kind == "tex":
        text = re.sub(r"\\begin\s*\{[a-zA-Z*]+\}(?:\s*\{[a-zA-Z|@ ]*\})?|\\end\s*\{[a-zA-Z*]+\}", " ", text)
        text = re.sub(r"\\(?:mathrm|mathit|mathbf|operatorname|text|mathsf|mbox)\s*\{([^{}]*)\}", r" \1 ", text)
        for m in re.finditer(r"\\([a-zA-Z]+)|([A-Za-z]+)|([0-9])|(\S)", text):
            if m.group(1):
                if m.group(1) in _KEEP_NAMES:
                    out.append(m.group(1).lower().removeprefix("var"))
            elif m.group(2):
                out.append(m.group(2))
            elif m.group(3):
                out.append(m.group(3))
            else:
                out.append(_unicode_name(m.group(4)))
    else:
        for m in re.finditer(r"([A-Za-z]+)|([0-9])|(\S)", text):
            if m.group(1):
                word = m.group(1)
                if kind == "asciimath" and word in _ASCIIMATH_WORDS:
                    continue
                if word in _KEEP_NAMES and (kind == "asciimath" or len(word) > 1):
                    out.append(word.lower().removeprefix("var"))
                    continue
                out.append(word)
            elif m.group(2):
                out.append(m.group(2))
            else:
                out.append(_unicode_name(m.group(3)))
    return "".join(out)


def _unicode_name(ch: str) -> str:
    """Greek letters by name (π -> "pi"); other symbols are dropped."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return ""
    m = re.match(r"(?:MATHEMATICAL [\w ]+ )?GREEK (?:SMALL |CAPITAL )?(?:LETTER )?(\w+)(?: SYMBOL)?$", name)
    return m.group(1).lower() if m else ""


_OUT_MATH = re.compile(
    r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|(\\begin\{([a-zA-Z]+\*?)\}.*?\\end\{\6\})",
    re.DOTALL,
)


def output_math_segments(text: str) -> list[str]:
    """The math an extractor's text holds: ``$$..$$``, ``$..$``, ``\\(..\\)``, ``\\[..\\]``, environments."""
    segments = []
    for m in _OUT_MATH.finditer(text):
        segments.append(next(g for g in m.groups()[:5] if g is not None))
    return segments


def strip_output_math(text: str) -> str:
    """``text`` with its math (the spans ``output_math_segments`` finds) replaced by a space:
    the prose left, to compare main texts whose references render formulas differently."""
    return _OUT_MATH.sub(" ", text)


def formula_retained(formula: SourceFormula, normalized_math: str, math_signature: str) -> bool:
    """Whether ``formula`` appears in the output math (given in normalised and signature forms)."""
    if formula.kind == "tex":
        key = normalize_tex(formula.text)
        return bool(key) and key in normalized_math
    sig = loose_signature(formula.text, formula.kind)
    return bool(sig) and sig in math_signature


def retention(formulas: list[SourceFormula], output_text: str) -> tuple[int, list[SourceFormula]]:
    """How many of ``formulas`` the output keeps as math, and the list of those it lost."""
    segments = output_math_segments(output_text)
    normalized = "\x00".join(normalize_tex(s) for s in segments)
    signature = "\x00".join(loose_signature(s, "tex") for s in segments)
    lost = [f for f in formulas if not formula_retained(f, normalized, signature)]
    return len(formulas) - len(lost), lost
