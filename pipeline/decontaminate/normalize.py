"""One text normalisation and tokenisation, applied alike to benchmark texts and to web pages.

Decontamination compares token sequences, so anything that changes the tokens without
changing the meaning would let a leak slip through. ``tokenize``:

1. applies Unicode NFKC (full-width to half-width, ligatures, superscript digits) and case
   folding;
2. removes what is not part of a problem's wording: GSM8K calculator annotations
   ``<<16-3-4=9>>`` and Asymptote figure code ``[asy] ... [/asy]`` (MATH);
3. maps Unicode math symbols to TeX (``≤`` -> ``\\leq``, ``√`` -> ``\\sqrt``, a stand-alone
   ``π`` -> ``\\pi``) and TeX aliases to one spelling (``\\dfrac`` -> ``\\frac``,
   ``\\dbinom`` -> ``\\binom``, ``\\varepsilon`` -> ``\\epsilon``);
4. drops what does not change the wording: TeX spacing (``\\,`` ``\\;`` ``\\!`` ``\\ `` ``\\quad``
   ``\\hspace{..}``), sizing and style wrappers (``\\left`` ``\\right`` ``\\big`` ``\\displaystyle``
   ``\\text`` ``\\mathrm`` ``\\boxed`` ...), environment names, math delimiters (``$`` ``\\(``
   ``\\[``), braces, operators and relations (``+ = \\leq \\times``), punctuation, markdown
   emphasis and list bullets, and thousands separators (``1,000`` -> ``1000``);
5. splits into tokens: words (letter runs), numbers (``3.5`` is one token, ``4ac`` is ``4 ac``),
   TeX command names (kept with their backslash, ``\\frac``, so they never equal a word),
   and one token per character for unsegmented scripts (Chinese, Japanese kana, Thai, Lao,
   Khmer, Myanmar), so the Chinese benchmarks fall under the same n-gram rule.

There is no separate math mode: text inside and outside ``$..$`` is tokenised alike, so a
leak is caught whether a page keeps, changes (``$`` vs ``\\(``) or loses the math delimiters.
The one spacing that still matters is between letters of one symbol run (``$4ac$`` is ``4 ac``,
``$4 a c$`` is ``4 a c``).

Guarantees: deterministic and pure (no state, no I/O); re-typesetting that only changes
spacing around operators and braces, case, Unicode width, delimiters, brace use or the
aliases above yields the same tokens; never raises on any ``str`` (malformed TeX included).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pipeline.unicode_scripts import UNSEGMENTED_RANGES

# Unsegmented scripts, tokenised one character per token: CJK ideographs (incl. extensions and
# compatibility forms), Hiragana/Katakana, Bopomofo, Thai, Lao, Myanmar, Khmer.
_UNSEGMENTED = UNSEGMENTED_RANGES
_UNSEGMENTED_CHAR = re.compile(f"[{_UNSEGMENTED}]")

# Unicode math symbols -> TeX (applied before case folding; NFKC leaves these alone).
_UNICODE_MATH = {
    "×": r"\times",
    "÷": r"\div",
    "·": r"\cdot",
    "⋅": r"\cdot",
    "∙": r"\cdot",
    "∗": "*",
    "≤": r"\leq",
    "≦": r"\leq",
    "⩽": r"\leq",
    "≥": r"\geq",
    "≧": r"\geq",
    "⩾": r"\geq",
    "≠": r"\neq",
    "±": r"\pm",
    "∓": r"\mp",
    "∞": r"\infty",
    "√": r"\sqrt",
    "∠": r"\angle",
    "°": r"\circ",
    "∈": r"\in",
    "∉": r"\notin",
    "⊂": r"\subset",
    "⊆": r"\subseteq",
    "⊃": r"\supset",
    "⊇": r"\supseteq",
    "∪": r"\cup",
    "∩": r"\cap",
    "∅": r"\emptyset",
    "≈": r"\approx",
    "≡": r"\equiv",
    "∼": r"\sim",
    "∑": r"\sum",
    "∏": r"\prod",
    "∫": r"\int",
    "∂": r"\partial",
    "∀": r"\forall",
    "∃": r"\exists",
    "→": r"\to",
    "⇒": r"\implies",
    "↔": r"\leftrightarrow",
    "⇔": r"\iff",
    "⊥": r"\perp",
    "∥": r"\parallel",
    "△": r"\triangle",
    "∴": r"\therefore",
    "∵": r"\because",
    "∣": r"\mid",
    "−": "-",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": " ",
    "―": " ",
}
_UNICODE_MATH_REPLACEMENT = {k: f" {v} " if v.startswith("\\") else v for k, v in _UNICODE_MATH.items()}
_UNICODE_MATH_CHAR = re.compile("[" + re.escape("".join(_UNICODE_MATH)) + "]")

# A Greek letter standing alone (not inside a Greek word) is a math symbol: "2πr" -> "2 \pi r".
_GREEK = "\u0370-\u03ff\u1f00-\u1fff"
_GREEK_ANY = re.compile(f"[{_GREEK}]")
_GREEK_LETTER = re.compile(f"(?<![{_GREEK}])([\u0391-\u03a9\u03b1-\u03c9\u03d1\u03d5\u03f5])(?![{_GREEK}])")


def _greek_name(ch: str) -> str:
    name = unicodedata.name(ch, "")
    word = name.split()[-1].lower() if name else ch
    if word == "symbol":  # GREEK THETA SYMBOL, GREEK PHI SYMBOL, GREEK LUNATE EPSILON SYMBOL
        word = name.split()[-2].lower()
    return {"lamda": "lambda"}.get(word, word)


_GREEK_NAMES = {
    chr(c): _greek_name(chr(c)) for c in list(range(0x391, 0x3AA)) + list(range(0x3B1, 0x3CA)) + [0x3D1, 0x3D5, 0x3F5]
}

# TeX control words (case-folded) -> replacement: spacing, sizing and style commands,
# delimiters, ellipses, operators and relations are removed; aliases get one spelling; any
# other command stays as a token with its backslash (``\frac``, ``\sqrt``, ``\pi``).
_TEX_WORDS: dict[str, str] = {}
for _w in (  # noqa: SIM905 - a word list reads better as one string
    "quad qquad enspace enskip thinspace medspace thickspace negthinspace negmedspace negthickspace "
    "hfill hfil vfill displaystyle textstyle scriptstyle scriptscriptstyle limits nolimits displaylimits "
    "nonumber notag left right middle big bigl bigr bigm bigg biggl biggr biggm "
    "text textrm textbf textit textsf texttt textnormal textup emph mbox hbox "
    "mathrm mathbf mathit mathsf mathtt mathnormal mathbb mathcal mathfrak mathscr boldsymbol bm pmb "
    "boxed fbox rm bf it sf tt cal operatorname strut mathstrut allowbreak noindent newline linebreak par centering"
).split():
    _TEX_WORDS[_w] = " "
for _w in (  # noqa: SIM905 - a word list reads better as one string
    "ldots cdots dots dotsc dotsb dotsm dotso vdots ddots lbrace rbrace lbrack rbrack langle rangle "
    "lvert rvert vert lVert rVert Vert mid "
    "le leq leqslant leqq ge geq geqslant geqq ne neq lt gt times cdot ast div pm mp setminus "
    "to gets implies iff rightarrow leftarrow leftrightarrow longrightarrow longleftarrow longleftrightarrow "
    "in notin ni subset subseteq supset supseteq subsetneq supsetneq cup cap wedge vee land lor neg lnot "
    "approx equiv sim simeq cong neq perp parallel propto"
).split():
    _TEX_WORDS[_w.casefold()] = " "
_TEX_WORDS.update(
    {
        "dfrac": r" \frac ",
        "tfrac": r" \frac ",
        "cfrac": r" \frac ",
        "dbinom": r" \binom ",
        "tbinom": r" \binom ",
        "varepsilon": r" \epsilon ",
        "varphi": r" \phi ",
        "vartheta": r" \theta ",
        "degree": r" \circ ",
    }
)

# Control symbols (\, \; \! \  \\ \{ \} \$ \% ...) are all removed.
_TEX_ARG_DROPS = re.compile(
    r"\\begin\s*\{(?:array|tabular)\*?\}\s*\{[^{}]*\}"  # column spec {c|cc}
    r"|\\(?:begin|end)\s*\{[a-z]+\*?\}"  # environment names: typesetting, not content
    r"|\\(?:hspace|vspace|color|label|tag)\*?\s*\{[^{}]*\}"
    r"|\\(?:kern|mkern|mskip|hskip|vskip)\s*-?[\d.]+\s*[a-z]{2}"
    r"|\\textcolor\s*\{[^{}]*\}"
)
_TEX_CONTROL = re.compile(r"\\(?:([a-z]+)\*?|.)", re.DOTALL)

_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL | re.IGNORECASE)
_GSM8K_CALC = re.compile(r"<<[^<>\n]{0,200}=[^<>\n]{0,200}>>")
_MARKDOWN = re.compile(r"^[ \t]*[-*+•][ \t]+|\*\*+|__+", re.MULTILINE)
_THOUSANDS = re.compile(r"(\d)(?:,|\{,\})(?=\d{3}(?!\d))")

_TOKEN = re.compile(r"\\[a-z]+|\d+(?:\.\d+)?|[^\W\d_]+")


def _rewrite_tex(text: str) -> str:
    """Apply the TeX alias/removal tables (to case-folded text)."""
    text = _TEX_ARG_DROPS.sub(" ", text)

    def control(m: re.Match) -> str:
        word = m.group(1)
        if word is not None:
            return _TEX_WORDS.get(word, f" \\{word} ")
        return " "

    return _TEX_CONTROL.sub(control, text)


def prepare(text: str) -> str:
    """The text after the character-level steps (NFKC, annotations, symbols, case), before tokenising."""
    text = unicodedata.normalize("NFKC", text)
    if "[asy]" in text or "[ASY]" in text:
        text = _ASY.sub(" ", text)
    if "<<" in text:
        text = _GSM8K_CALC.sub(" ", text)
    if _GREEK_ANY.search(text):
        text = _GREEK_LETTER.sub(lambda m: f" \\{_GREEK_NAMES[m.group(1)]} ", text)
    text = _UNICODE_MATH_CHAR.sub(lambda m: _UNICODE_MATH_REPLACEMENT[m.group()], text)
    text = _MARKDOWN.sub(" ", text)
    return text.casefold()


def tokenize(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see the module docstring). Never raises on a ``str``."""
    text = prepare(text)
    if "\\" in text:
        text = _rewrite_tex(text)
    text = _THOUSANDS.sub(r"\1", text)
    text = _UNSEGMENTED_CHAR.sub(r" \g<0> ", text)
    return _TOKEN.findall(text)


_WORDLIKE = re.compile(f"[{_UNSEGMENTED}]|^[^\\W\\d_]{{2,}}$")


@lru_cache(maxsize=1 << 18)
def is_wordlike(token: str) -> bool:
    """True for a token that is a word: two or more letters (``apples``, ``ac``) or a CJK
    character; False for numbers, single letters and TeX commands (``12``, ``x``, ``\\frac``)."""
    return _WORDLIKE.search(token) is not None


def normalize(text: str) -> str:
    """The normalised form of ``text``: its tokens joined by single spaces."""
    return " ".join(tokenize(text))
