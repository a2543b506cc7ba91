"""fastText lid.176 language identification: the bundled model, Chinese and English, newlines, formulas."""
from __future__ import annotations

import pytest

from classifiers.langid import UNKNOWN_LANG, load_identifier, model_path, prepare_text


@pytest.fixture(scope="module")
def lid():
    return load_identifier()


def test_model_ships_with_the_wheel():
    path = model_path()
    assert path.name == "lid.176.ftz" and path.stat().st_size > 500_000


@pytest.mark.parametrize("text,lang", [
    ("二次方程的求根公式是数学中最常用的公式之一。\n我们先来看判别式。\n\n然后讨论根的个数。", "zh"),
    ("The quadratic formula solves every equation of degree two.\nFirst we look at the discriminant.", "en"),
    ("Die quadratische Gleichung hat zwei Lösungen,\nwenn die Diskriminante positiv ist.", "de"),
    ("二次方程式の解の公式は、\n判別式が正のとき二つの実数解を与えます。", "ja"),
])
def test_identifies_multiline_text(lid, text, lang):
    got, score = lid.identify(text)
    assert got == lang and 0.5 < score <= 1.0


def test_formulas_do_not_decide_the_language(lid):
    text = "设 $x^2 + y^2 = 1$，求 $$\\int_0^1 \\sqrt{1-x^2}\\,dx$$ 的值。这是一道关于圆的面积的题目。"
    assert lid.identify(text)[0] == "zh"
    assert prepare_text("a $b$ c $$d$$ e\nf") == "a c e f"


@pytest.mark.parametrize("text", ["", "   \n\t ", "$x^2$", "$$\\frac{a}{b}$$"])
def test_nothing_to_identify_is_unknown(lid, text):
    assert lid.identify(text) == (UNKNOWN_LANG, 0.0)


def test_long_text_is_cut(lid):
    assert len(prepare_text("word " * 100_000, max_chars=1000)) == 1000
    assert lid.identify("This is English. " * 50_000)[0] == "en"
