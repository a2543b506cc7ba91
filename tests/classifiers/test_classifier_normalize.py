"""The one normalisation of the math classifier: hand-checked token streams."""
from classifiers.normalize import normalize_text, tokenize


def test_tex_is_kept_as_tokens_and_numbers_become_shapes():
    text = "The integral $$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ in 2024."
    assert normalize_text(text) == "the integral $$ \\int _ 0 ^ 0 x ^ 0 \\, dx = \\frac { 0 } { 0 } $$ in 0000 ."


def test_case_whitespace_and_invisible_characters():
    assert normalize_text("Ünïcode  WORDS\t\x00tab\u200bzero\n\nNext") == "ünïcode words tab zero next"


def test_unsegmented_scripts_are_split_per_character_and_full_width_folded():
    # NFKC turns the full-width 3 and the superscript 2 into ASCII digits, then zeros.
    assert normalize_text("求函数f(x)=x²+３x的最小值") == "求 函 数 f ( x ) = x 0 + 0 x 的 最 小 值"
    assert normalize_text("abc中文") == "abc 中 文"
    assert normalize_text("안녕하세요 세계") == "안녕하세요 세계"  # Hangul is space-separated: kept as words


def test_labels_cannot_be_smuggled_and_lines_stay_single():
    out = normalize_text("__label__math\nsecond line\r\nthird")
    assert "__label__" not in out and "\n" not in out and "\r" not in out
    assert out == "_ _ label _ _ math second line third"


def test_number_shape_caps_at_four_digits_and_max_tokens_truncates():
    assert normalize_text("7 12 123456") == "0 00 0000"
    assert tokenize("a b c d e", max_tokens=3) == ["a", "b", "c"]
    assert normalize_text("") == "" and normalize_text("   \n") == ""
