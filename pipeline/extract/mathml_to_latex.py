"""MathML -> LaTeX for formulas that carry no TeX of their own.

Method: the XSLT MathML Library's ``mmltex.xsl`` (Vasil Yaroshevich; the same stylesheet
OpenWebMath uses), run by lxml's libxslt. The stylesheet files ship inside the
``py-asciimath`` package, so nothing is downloaded; it is compiled once per process.

Guarantees: never raises. HTML parsers give MathML without its namespace and sometimes with a
prefix (``m:mi``); the element is rebuilt in the MathML namespace before the transform. When
the stylesheet is not installed, fails, or the MathML is larger than ``MAX_MATHML_NODES``
(XSLT recursion is the cost to bound), the formula falls back to its token text in reading
order (``x = − b ± b 2 ...``): less faithful, but the symbols and numbers are kept.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from functools import lru_cache
from pathlib import Path

from lxml import etree

__all__ = ["MAX_MATHML_NODES", "mathml_to_latex"]

LOG = logging.getLogger(__name__)

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
MAX_MATHML_NODES = 5000  # larger MathML falls back to token text (bounded cost per formula)
_TOKEN_TAGS = {"mi", "mn", "mo", "mtext", "ms"}
_SKIP_TAGS = {"annotation", "annotation-xml"}


@lru_cache(maxsize=1)
def _stylesheet() -> etree.XSLT | None:
    """The compiled mmltex stylesheet, or None when py-asciimath is not installed."""
    try:
        # find_spec locates the package without importing it (its import reconfigures logging)
        spec = importlib.util.find_spec("py_asciimath")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "translation" / "mathml2tex" / "mmltex.xsl"
        return etree.XSLT(etree.parse(str(path)))
    except Exception:  # noqa: BLE001 - missing package or unreadable stylesheet: use the fallback
        return None


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def _rebuild(element: etree._Element, counter: list[int]) -> etree._Element:
    """A namespaced copy of ``element`` (annotations dropped, attributes kept when XML-safe)."""
    counter[0] += 1
    if counter[0] > MAX_MATHML_NODES:
        raise ValueError("MathML too large")
    copy = etree.Element(f"{{{MATHML_NS}}}{_local(element.tag)}")
    for key, value in element.attrib.items():
        if re.fullmatch(r"[A-Za-z_][\w.-]*", key) and key != "xmlns":
            copy.set(key, value)
    # token text is trimmed (as MathML renderers do); tails are inter-element whitespace: dropped
    copy.text = element.text.strip() if element.text and _local(element.tag) in _TOKEN_TAGS else element.text
    for child in element:
        name = _local(child.tag)
        if name and name not in _SKIP_TAGS:
            copy.append(_rebuild(child, counter))
    return copy


def _token_text(element: etree._Element) -> str:
    parts = []
    for node in element.iter():
        if _local(node.tag) in _TOKEN_TAGS and node.text:
            parts.append(node.text.strip())
    return " ".join(p for p in parts if p)


def _strip_math_delimiters(tex: str) -> str:
    tex = tex.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("$", "$")):
        if tex.startswith(left) and tex.endswith(right) and len(tex) >= len(left) + len(right):
            return tex[len(left) : len(tex) - len(right)].strip()
    return tex


_TIDY = (
    (re.compile(r"\\phantom\{\\rule\{[^{}]*\}\{[^{}]*\}\}"), " "),  # <mspace> widths
    (re.compile(r"\{\\textstyle\s*\}"), ""),
    (re.compile(r"\\mathrm\{(\\[a-zA-Z]+)\s*\}"), r"\1"),  # \mathrm{\infty } -> \infty
    (re.compile(r"\\genfrac\{\}\{\}\{0ex\}\{\}"), r"\\binom"),  # linethickness=0 fraction
    # a symbol written straight before a letter (<mi>∂</mi><mi>X</mi>) must stay two tokens
    (
        re.compile(
            r"(\\(?:partial|nabla|infty|hbar|ell|alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|pi|rho|sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Pi|Sigma|Phi|Psi|Omega))(?=[A-Za-z])"
        ),
        r"\1 ",
    ),
    (re.compile(r"\s{2,}"), " "),
)


def _tidy(tex: str) -> str:
    """Undo the stylesheet's layout-only output (spacing rules, empty style groups)."""
    for pattern, repl in _TIDY:
        tex = pattern.sub(repl, tex)
    return tex.strip()


def mathml_to_latex(math_element: etree._Element) -> str:
    """LaTeX (without ``$`` delimiters) for a ``<math>`` element parsed from HTML or XML."""
    try:
        xslt = _stylesheet()
        if xslt is not None:
            root = _rebuild(math_element, [0])
            root.attrib.pop("display", None)
            tex = str(xslt(etree.ElementTree(root)))
            tex = _tidy(re.sub(r"\s+", " ", _strip_math_delimiters(tex)).strip())
            if tex:
                return tex
    except Exception as exc:  # noqa: BLE001 - a malformed formula falls back to its token text
        LOG.debug("MathML stylesheet failed (%r); using token text", exc)
    try:
        return _token_text(math_element)
    except Exception:  # noqa: BLE001
        return ""
