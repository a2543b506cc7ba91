"""One text normalisation and tokenisation, applied alike to benchmark texts and to web pages.

Decontamination compares token sequences, so anything that changes the tokens without
changing the meaning would let a leak slip through. ``tokenize`` therefore:

1. applies Unicode NFKC (full-width to half-width, ligatures, superscript digits) and case
   folding;
2. removes content that is not part of a problem's wording: GSM8K calculator annotations
   ``<<16-3-4=9>>`` and Asymptote figure code ``[asy] ... [/asy]`` (MATH);
3. maps Unicode math symbols to their TeX names (``×`` -> ``\\times``, ``≤`` -> ``\\leq``,
   a stand-alone ``π`` -> ``\\pi``), and TeX aliases to one spelling (``\\dfrac`` -> ``\\frac``,
   ``\\le`` -> ``\\leq``, ``\\cdot``/``\\times``/``*`` -> ``*``);
4. drops what does not change meaning: TeX spacing (``\\,`` ``\\;`` ``\\!`` ``\\ `` ``\\quad``
   ``\\hspace{..}``), sizing and style wrappers (``\\left`` ``\\right`` ``\\big`` ``\\displaystyle``
   ``\\text`` ``\\mathrm`` ...), math delimiters (``$`` ``\\(`` ``\\[``), braces, punctuation,
   markdown emphasis and list bullets, thousands separators (``1,000`` -> ``1000``);
5. splits into tokens: words (letter runs), numbers (``3.5`` is one token), the operators
   ``+ - = < > <= >= != * / %``, TeX command names (``\\frac`` -> ``frac``), and one token per
   character for unsegmented scripts (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar), so
   that the Chinese benchmarks fall under the same n-gram rule. Inside math (``$..$``,
   ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, ``equation``/``align``-like environments) every letter is
   its own token, since TeX ignores spaces there (``$4ac$`` == ``$4 a c$``); the contents of
   ``\\text{..}``/``\\mathrm{..}``/``\\operatorname{..}`` stay words.

Guarantees: deterministic and pure (no state, no I/O); re-typesetting that only changes
spacing, case, Unicode width, brace use or the aliases above yields the same tokens; never
raises on any ``str`` (including malformed TeX, unbalanced ``$``).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Unsegmented scripts, tokenised one character per token: CJK ideographs (incl. extensions and
# compatibility forms), Hiragana/Katakana, Bopomofo, Thai, Lao, Myanmar, Khmer.
_UNSEGMENTED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005-\u3007"  # iteration mark, closing mark, ideographic zero
    "\u3040-\u31ff"  # Hiragana, Katakana, Bopomofo, Hangul compatibility jamo, Kanbun, ...
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B..G
)
_UNSEGMENTED_CHAR = re.compile(f"[{_UNSEGMENTED}]")

# Unicode math symbols -> TeX (applied before case folding; NFKC leaves these alone).
_UNICODE_MATH = {
    "×": r"\times", "÷": r"\div", "·": r"\cdot", "⋅": r"\cdot", "∙": r"\cdot", "∗": "*",
    "≤": r"\leq", "≦": r"\leq", "⩽": r"\leq", "≥": r"\geq", "≧": r"\geq", "⩾": r"\geq", "≠": r"\neq",
    "±": r"\pm", "∓": r"\mp", "∞": r"\infty", "√": r"\sqrt", "∠": r"\angle", "°": r"\circ",
    "∈": r"\in", "∉": r"\notin", "⊂": r"\subset", "⊆": r"\subseteq", "⊃": r"\supset", "⊇": r"\supseteq",
    "∪": r"\cup", "∩": r"\cap", "∅": r"\emptyset", "≈": r"\approx", "≡": r"\equiv", "∼": r"\sim",
    "∑": r"\sum", "∏": r"\prod", "∫": r"\int", "∂": r"\partial", "∀": r"\forall", "∃": r"\exists",
    "→": r"\to", "⇒": r"\implies", "↔": r"\leftrightarrow", "⇔": r"\iff", "⊥": r"\perp", "∥": r"\parallel",
    "△": r"\triangle", "∴": r"\therefore", "∵": r"\because", "∣": r"\mid",
    "−": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": " ", "―": " ",
}
_UNICODE_MATH_TABLE = str.maketrans({k: f" {v} " if v.startswith("\\") else v for k, v in _UNICODE_MATH.items()})

# A Greek letter standing alone (not inside a Greek word) is a math symbol: "2πr" -> "2 \pi r".
_GREEK = "\u0370-\u03ff\u1f00-\u1fff"
_GREEK_LETTER = re.compile(f"(?<![{_GREEK}])([\u0391-\u03a9\u03b1-\u03c9\u03d1\u03d5\u03f5])(?![{_GREEK}])")


def _greek_name(ch: str) -> str:
    name = unicodedata.name(ch, "")
    word = name.split()[-1].lower() if name else ch
    if word == "symbol":  # GREEK THETA SYMBOL, GREEK PHI SYMBOL, GREEK LUNATE EPSILON SYMBOL
        word = name.split()[-2].lower()
    return {"lamda": "lambda"}.get(word, word)


_GREEK_NAMES = {chr(c): _greek_name(chr(c)) for c in list(range(0x391, 0x3AA)) + list(range(0x3B1, 0x3CA)) + [0x3D1, 0x3D5, 0x3F5]}

# TeX control words (case-folded) -> replacement.
# - spacing, sizing and style commands are removed (" "): inside math a space is not a boundary;
# - delimiters, ellipses and operators/relations become a boundary (" , "): inside math they
#   end a token (see ``_math_tokens``), in text they are dropped like any punctuation;
# - aliases are rewritten to one spelling.
_TEX_WORDS: dict[str, str] = {}
for _w in (
    "quad qquad enspace enskip thinspace medspace thickspace negthinspace negmedspace negthickspace "
    "hfill hfil vfill displaystyle textstyle scriptstyle scriptscriptstyle limits nolimits displaylimits "
    "nonumber notag left right middle big bigl bigr bigm bigg biggl biggr biggm "
    "text textrm textbf textit textsf texttt textnormal textup emph mbox hbox "
    "mathrm mathbf mathit mathsf mathtt mathnormal mathbb mathcal mathfrak mathscr boldsymbol bm pmb "
    "boxed fbox rm bf it sf tt cal operatorname strut mathstrut allowbreak noindent newline linebreak par centering"
).split():
    _TEX_WORDS[_w] = " "
for _w in (
    "ldots cdots dots dotsc dotsb dotsm dotso vdots ddots lbrace rbrace lbrack rbrack langle rangle "
    "lvert rvert vert lVert rVert Vert mid "
    "le leq leqslant leqq ge geq geqslant geqq ne neq lt gt times cdot ast div pm mp setminus "
    "to gets implies iff rightarrow leftarrow leftrightarrow longrightarrow longleftarrow longleftrightarrow "
    "in notin ni subset subseteq supset supseteq subsetneq supsetneq cup cap wedge vee land lor neg lnot "
    "approx equiv sim simeq cong neq perp parallel propto"
).split():
    _TEX_WORDS[_w.casefold()] = " , "
_TEX_WORDS.update({
    "dfrac": r"\frac", "tfrac": r"\frac", "cfrac": r"\frac", "dbinom": r"\binom", "tbinom": r"\binom",
    "varepsilon": r"\epsilon", "varphi": r"\phi", "vartheta": r"\theta", "degree": r"\circ",
})

# Control symbols: spacing (\, \; \: \! \> \ ) is removed; \\ \{ \} \| \& become boundaries;
# escaped specials (\$ \% \# \_) are dropped (an escaped $ never opens math).
_TEX_SYMBOLS = {"\\": " , ", "{": " , ", "}": " , ", "|": " , ", "&": " , "}

_TEX_ARG_DROPS = re.compile(
    r"\\begin\s*\{(?:array|tabular)\*?\}\s*\{[^{}]*\}"  # column spec {c|cc}
    r"|\\(?:begin|end)\s*\{[a-z]+\*?\}"  # environment names: typesetting, not content
    r"|\\(?:hspace|vspace|color|label|tag)\*?\s*\{[^{}]*\}"
    r"|\\(?:kern|mkern|mskip|hskip|vskip)\s*-?[\d.]+\s*[a-z]{2}"
    r"|\\textcolor\s*\{[^{}]*\}"
)
_TEX_CONTROL = re.compile(r"\\(?:([a-z]+)\*?|(.))", re.DOTALL)

_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL | re.IGNORECASE)
_GSM8K_CALC = re.compile(r"<<[^<>\n]{0,200}=[^<>\n]{0,200}>>")
_MARKDOWN = re.compile(r"^[ \t]*[-*+•][ \t]+|\*\*+|__+", re.MULTILINE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))|(?<=\d)\{,\}(?=\d)")

# Math spans. Inline $..$ follows pandoc's rule (no space after the opening $, none before the
# closing $, no digit right after it), so "costs $5 and $3" is not math.
_MATH_SPAN = re.compile(
    r"\$\$(?P<a>.+?)\$\$"
    r"|\\\[(?P<b>.+?)\\\]"
    r"|\\\((?P<c>.+?)\\\)"
    r"|\\begin\{(?P<env>equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign)(?P<star>\*?)\}"
    r"(?P<d>.*?)\\end\{(?P=env)(?P=star)\}"
    r"|(?<![\\$])\$(?![\s$])(?P<e>(?:[^$\\]|\\.)+?)(?<![\s\\])\$(?!\d)",
    re.DOTALL,
)
_MATH_TEXT_GROUP = re.compile(
    r"\\(?:text|textrm|textbf|textit|textsf|texttt|textnormal|textup|mbox|hbox|operatorname|mathrm)\*?\s*\{([^{}]*)\}"
)

_TEXT_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")
# Inside math: letters (also of command names) and numbers are parts of a token; operators,
# relations and punctuation (a '.' unless a decimal point) end it; anything else (spaces,
# backslashes, ^ _ { } ') is ignored.
_MATH_BOUNDARY = re.compile(r"[+\-=<>*/%!,;:()\[\]|&?\0]|\.(?!\d)|(?<!\d)\.")
_MATH_NOT_PIECE = re.compile(r"[^\w.\0]|_")


def _rewrite_tex(segment: str) -> str:
    """Apply the TeX alias/removal tables to one (case-folded) segment."""
    segment = _TEX_ARG_DROPS.sub(" ", segment)

    def control(m: re.Match) -> str:
        word, symbol = m.group(1), m.group(2)
        if word is not None:
            return _TEX_WORDS.get(word, f" \\{word} ")
        return _TEX_SYMBOLS.get(symbol, " ")

    return _TEX_CONTROL.sub(control, segment)


def _text_tokens(segment: str, out: list[str]) -> None:
    segment = _THOUSANDS.sub("", _rewrite_tex(segment))
    segment = _UNSEGMENTED_CHAR.sub(r" \g<0> ", segment)
    out.extend(_TEXT_TOKEN.findall(segment))


def _math_tokens(segment: str, out: list[str]) -> None:
    pos = 0
    for m in _MATH_TEXT_GROUP.finditer(segment):
        _math_chunks(segment[pos:m.start()], out)
        _text_tokens(m.group(1), out)
        pos = m.end()
    _math_chunks(segment[pos:], out)


def _math_chunks(segment: str, out: list[str]) -> None:
    """Math as tokens: maximal runs of symbols between operators/relations/punctuation.

    TeX ignores spaces in math, so a token is built from its pieces without them:
    ``ax^2+bx+c=0`` and ``a x^{2} + b x + c = 0`` both give ``ax2 bx c 0``, and
    ``\\frac{1}{2}`` and ``\\frac12`` both give ``frac12``.
    """
    segment = _THOUSANDS.sub("", _rewrite_tex(segment))
    segment = _MATH_NOT_PIECE.sub("", _MATH_BOUNDARY.sub("\0", segment))
    out.extend(chunk for chunk in segment.split("\0") if chunk)


def prepare(text: str) -> str:
    """The text after the character-level steps (NFKC, annotations, symbols, case), before tokenising."""
    text = unicodedata.normalize("NFKC", text)
    if "[asy]" in text or "[ASY]" in text:
        text = _ASY.sub(" ", text)
    if "<<" in text:
        text = _GSM8K_CALC.sub(" ", text)
    text = _GREEK_LETTER.sub(lambda m: f" \\{_GREEK_NAMES[m.group(1)]} ", text)
    text = text.translate(_UNICODE_MATH_TABLE)
    text = _MARKDOWN.sub(" ", text)
    return text.casefold()


def tokenize(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see the module docstring). Never raises on a ``str``."""
    text = prepare(text)
    out: list[str] = []
    pos = 0
    if "$" in text or "\\" in text:
        for m in _MATH_SPAN.finditer(text):
            _text_tokens(text[pos:m.start()], out)
            inner = m.group("a") or m.group("b") or m.group("c") or m.group("d") or m.group("e") or ""
            _math_tokens(inner, out)
            pos = m.end()
    _text_tokens(text[pos:], out)
    return out


_WORDLIKE = re.compile(f"[{_UNSEGMENTED}]|[^\\W\\d_].*[^\\W\\d_]")


@lru_cache(maxsize=1 << 18)
def is_wordlike(token: str) -> bool:
    """True for a token carrying words: two or more letters (``apples``, ``frac12``) or a CJK
    character; False for numbers and single-letter variables (``12``, ``x``, ``x2``)."""
    return _WORDLIKE.search(token) is not None


def normalize(text: str) -> str:
    """The normalised form of ``text``: its tokens joined by single spaces."""
    return " ".join(tokenize(text))
