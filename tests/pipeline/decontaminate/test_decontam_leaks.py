"""The default index on real pages: planted benchmark leaks are all caught and named; clean
real pages are kept (every removal is explained below)."""

from __future__ import annotations

from pipeline.decontaminate.benchmarks_spec import parse_specs
from pipeline.decontaminate.index import IndexConfig, build_index
from pipeline.decontaminate.normalize import is_wordlike, tokenize


def test_every_planted_leak_is_caught_and_names_its_item(default_index, leaks):
    assert len(leaks) == 6
    for leak in leaks:
        matches = default_index.find(tokenize(leak.text))
        named = {(m.benchmark, m.item_id) for m in matches}
        assert (leak.benchmark, leak.item_id) in named, f"{leak.kind}: found only {named}"
        # the audit's matched n-gram is real benchmark text of that item
        m = next(m for m in matches if (m.benchmark, m.item_id) == (leak.benchmark, leak.item_id))
        assert m.matched and m.matched in " ".join(tokenize(leak.text))


def _removed(index, clean_pages) -> dict[str, set[str]]:
    """Clean page name -> the benchmark items (``benchmark:item_id``) it was removed for."""
    out = {}
    for name, text in clean_pages:
        matches = index.find(tokenize(text))
        if matches:
            out[name] = {f"{m.benchmark}:{m.item_id}" for m in matches}
    return out


QUADRATIC_FORMULA = "math:test/algebra/2619.json"  # its solution holds x = (-b ± sqrt(b^2-4ac))/(2a)
MATHJAX_QUADRATIC_DEMOS = [  # MathJax demo pages typesetting the quadratic formula
    "html/math/mathjax-demos__page_mml-chtml.html",
    "html/math/mineru__ccmath__mathjax-mml-chtml.html",
    "html/math/mineru__ccmath__mathjax-mml-chtml_prefix.html",
    "html/math/readability__mathjax.html",
]


def test_clean_real_pages_are_kept(default_index, clean_pages):
    """66 real pages (the 36 labelled math HTML pages as the extract stage gives them, formulas
    as TeX, and the 30 Common Crawl documents): the default rule removes none of them."""
    assert len(clean_pages) == 66
    assert sum(len(text) for _, text in clean_pages) > 300_000  # the pages really have text
    removed = _removed(default_index, clean_pages)
    print(f"default rule: {len(removed)} of {len(clean_pages)} clean pages removed")
    assert removed == {}


def test_one_word_windows_remove_five_explained_pages(clean_pages):
    """With one word-like token enough for a window (``min_wordlike_tokens=1``), five clean pages
    are removed, each for a window that is a formula or a list with a single word in it:
    - four MathJax demo pages typeset the quadratic formula, ``x \\frac b \\sqrt b 2 4 ac 2 a``
      (``ac`` is the one "word"), a 10-gram of the solution of MATH test/algebra/2619;
    - the AsciiMath tutorial writes ``1 2 3 4 5 6 7 8 9 and``, as does MATH test/algebra/1286
      ("the digits 1, 2, ..., 9 and ...").
    That is why a window needs two word-like tokens by default."""
    one_word = build_index(parse_specs(["math"]), IndexConfig(min_wordlike_tokens=1))
    removed = _removed(one_word, clean_pages)
    print(f"min_wordlike_tokens=1: {len(removed)} of {len(clean_pages)} clean pages removed")
    assert removed == {
        **{page: {QUADRATIC_FORMULA} for page in MATHJAX_QUADRATIC_DEMOS},
        "html/math/mineru__ccmath__asciimath.html": {"math:test/algebra/1286.json"},
    }


def test_the_plain_paper_rule_removes_seven_explained_pages(clean_pages):
    """The paper's plain rule (every window indexed, ``min_wordlike_tokens=0``,
    ``min_wordlike_whole=0``) removes seven clean pages, all on windows with at most one word:
    the five pages above, plus
    - the MathJax equation-numbering demo: the letters ``m n o p q r s t u v`` (as in the list of
      variables of MATH test/algebra/2465) and ``a 2 b 2 c 2 d 2 e 2`` (``a^2+b^2+c^2+d^2+e^2``,
      MATH test/intermediate_algebra/986);
    - the AsciiMath tutorial also writes ``\\frac x 1 x 1 \\frac x 1 x 2``, a fraction sum of MATH
      test/intermediate_algebra/657;
    - a Common Crawl document of the Dolma sample lists the numbers ``1 2 3 ... 19``, as do MATH
      counting problems (1, 2, ..., 10 and runs up to 19)."""
    plain = build_index(parse_specs(["math"]), IndexConfig(min_wordlike_tokens=0, min_wordlike_whole=0))
    removed = _removed(plain, clean_pages)
    print(f"plain rule: {len(removed)} of {len(clean_pages)} clean pages removed")
    assert removed == {
        **{page: {QUADRATIC_FORMULA} for page in MATHJAX_QUADRATIC_DEMOS},
        "html/math/mineru__ccmath__asciimath.html": {
            "math:test/algebra/1286.json",
            "math:test/intermediate_algebra/657.json",
        },
        "html/math/mathjax-demos__page_equation-numbers.html": {
            "math:test/algebra/2465.json",
            "math:test/intermediate_algebra/986.json",
        },
        "text/dolma__provided_documents_000.jsonl.gz#8": {
            "math:test/counting_and_probability/110.json",
            "math:test/number_theory/51.json",
            "math:test/prealgebra/1218.json",
            "math:test/algebra/923.json",
        },
    }
    for name, text in clean_pages:  # every matched window holds at most one word-like token
        for m in plain.find(tokenize(text)):
            assert sum(map(is_wordlike, m.matched.split())) <= 1, (name, m.matched)
