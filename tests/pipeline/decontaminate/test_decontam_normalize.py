"""Hand-checked normalisation: what re-typesetting is ignored, and what is kept."""

from __future__ import annotations

import pytest

from pipeline.decontaminate.normalize import is_wordlike, normalize, tokenize


def test_case_punctuation_whitespace_and_nfkc_full_width():
    assert tokenize("Hello,  World!\n\tFoo.") == ["hello", "world", "foo"]
    assert tokenize("ＡＢＣ　１２３，ｘ") == ["abc", "123", "x"]
    assert tokenize("Janet’s ducks") == tokenize("JANET'S  DUCKS") == ["janet", "s", "ducks"]


def test_latex_spacing_braces_sizing_and_aliases_are_ignored():
    plain = r"$y=\frac{2}{x^2+x-6}$"
    respaced = r"\( y = \dfrac {2}{ x^{2} + x - 6 } \)"
    spaced = r"$$y\,=\;\frac{2}{\left(x^{2}\right)+x\!-\!6}$$"
    assert tokenize(plain) == tokenize(respaced) == tokenize(spaced) == ["y", "\\frac", "2", "x", "2", "x", "6"]
    assert tokenize(r"$\dbinom{8}{4}$") == tokenize(r"$\binom {8}{ 4 }$") == ["\\binom", "8", "4"]
    assert tokenize(r"$\boxed{\tfrac{1}{2}}$") == ["\\frac", "1", "2"]
    assert tokenize(r"$\text{ cm}^2$ and $\mathrm{cm}^{2}$") == ["cm", "2", "and", "cm", "2"]
    assert tokenize(r"\begin{align*} x &= 1 \\ y &= 2 \end{align*}") == ["x", "1", "y", "2"]


def test_unicode_math_symbols_equal_their_tex():
    assert tokenize("2 × 3 ≤ 7, area πr²") == tokenize(r"$2 \times 3 \leq 7$, area $\pi r^2$")
    assert tokenize("2 × 3 ≤ 7, area πr²") == ["2", "3", "7", "area", "\\pi", "r", "2"]
    assert tokenize("30°") == tokenize(r"$30^\circ$") == ["30", "\\circ"]
    # a Greek word is text, not a run of math symbols (case folding turns the final ς into σ)
    assert tokenize("Λόγος") == ["λόγοσ"]


def test_gsm8k_calculator_annotations_and_asymptote_are_removed():
    answer = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18"
    assert tokenize(answer) == ["janet", "sells", "16", "3", "4", "9", "duck", "eggs", "a", "day", "18"]
    assert tokenize('Find x. [asy] draw((0,0)--(1,1)); label("$x$",(0,0)); [/asy] Done') == ["find", "x", "done"]


def test_numbers_thousands_separators_and_currency():
    assert tokenize("It costs $1,000.50 or 1{,}000 or 2,500,000") == [
        "it",
        "costs",
        "1000.50",
        "or",
        "1000",
        "or",
        "2500000",
    ]
    assert tokenize("lists 1,2,3 stay apart") == ["lists", "1", "2", "3", "stay", "apart"]
    assert tokenize("costs $5 and $3.") == ["costs", "5", "and", "3"]


def test_cjk_is_one_token_per_character_and_digits_split_off():
    assert tokenize("妈咪买了3盒茶叶，一共多少？") == [
        "妈",
        "咪",
        "买",
        "了",
        "3",
        "盒",
        "茶",
        "叶",
        "一",
        "共",
        "多",
        "少",
    ]
    assert tokenize("若 $a>b$, 则") == ["若", "a", "b", "则"]


def test_markdown_emphasis_and_bullets_are_ignored():
    assert tokenize("- **Janet** has __three__ ducks\n* and a cow") == [
        "janet",
        "has",
        "three",
        "ducks",
        "and",
        "a",
        "cow",
    ]


def test_commands_never_equal_words():
    assert tokenize(r"\sqrt{2}") == ["\\sqrt", "2"]
    assert tokenize("sqrt(2)") == ["sqrt", "2"]


@pytest.mark.parametrize(
    "junk", ["", "$", "$$", "\\", "$$$\\\\{{{", "\\begin{", "<<=>>", "[asy]", "\x00\ufffd", "$x" * 1000]
)
def test_never_raises_on_malformed_input(junk):
    assert isinstance(tokenize(junk), list)


def test_is_wordlike():
    assert [is_wordlike(t) for t in ["apples", "ac", "妈", "x", "12", "3.5", "\\frac"]] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_normalize_joins_tokens():
    assert normalize("  Hello,\nWORLD  ") == "hello world"
