"""The index on small hand-made benchmarks: the paper's rule, short texts, audit, persistence."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.decontaminate.benchmarks_spec import BUNDLED, BenchmarkText, parse_spec, parse_specs, read_texts
from pipeline.decontaminate.index import BenchmarkIndex, IndexConfig
from pipeline.decontaminate.normalize import tokenize

LONG = "A farmer has 17 sheep and all but nine run away; how many sheep does the farmer have left?"
SHORT = "Compute 12 apples plus pears."  # 5 tokens


def _index(*texts: str, **config) -> BenchmarkIndex:
    return BenchmarkIndex.build(
        [BenchmarkText("toy", f"toy:{i}", "question", t) for i, t in enumerate(texts)], IndexConfig(**config)
    )


def _found(index, page):
    return [(m.item_id, m.kind) for m in index.find(tokenize(page))]


def test_any_shared_10_gram_removes_the_page_and_the_audit_names_it():
    index = _index(LONG)
    page = "Old riddle. ALL BUT NINE RUN AWAY; how many sheep does the farmer have? Think."
    (m,) = index.find(tokenize(page))
    assert (m.benchmark, m.item_id, m.field, m.kind) == ("toy", "toy:0", "question", "ngram")
    assert m.matched == "all but nine run away how many sheep does the"
    assert m.windows == 3  # "all ... the", "but ... farmer", "nine ... have"


def test_nine_shared_tokens_are_not_enough():
    index = _index(LONG)
    assert _found(index, "all but nine run away how many sheep does") == []
    # one token changed inside every shared window: no match
    assert _found(index, "all but nine run away how many goats does the farmer") == []


def test_short_texts_match_whole_and_token_boundary_aware():
    index = _index(SHORT, LONG)
    assert index.stats.short_texts == 1
    assert _found(index, "Exercise 3: compute 12 apples plus pears!") == [("toy:0", "exact")]
    assert _found(index, "compute 112 apples plus pears") == []
    assert _found(index, "compute 12 apples plus pearson") == []
    assert _found(index, "compute 12 apples") == []


def test_too_short_and_numbers_only_texts_are_not_indexed():
    index = _index("Find x.", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12")
    assert index.stats.texts_too_short == 1
    assert index.stats.ngrams == 0 and index.stats.uninformative_ngrams == 3
    assert _found(index, "count 1 2 3 4 5 6 7 8 9 10 11 12") == []
    plain = _index("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12", min_wordlike_tokens=0)
    assert _found(plain, "count 1 2 3 4 5 6 7 8 9 10 11 12") == [("toy:0", "ngram")]


def test_windows_need_two_words_by_default():
    solution = r"By the quadratic formula, $x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}$, so the roots are real."
    formula = r"the roots of $ax^2+bx+c=0$ are $x=\dfrac{-b\pm\sqrt{b^2-4ac}}{2a}$."
    assert tokenize(formula)[-10:] == ["x", "\\frac", "b", "\\sqrt", "b", "2", "4", "ac", "2", "a"]
    assert _found(_index(solution), formula) == []  # one word-like token ("ac") in the window
    assert _found(_index(solution, min_wordlike_tokens=1), formula) == [("toy:0", "ngram")]
    page = r"Recall: by the quadratic formula, $x=\dfrac{-b\pm\sqrt{b^2-4ac}}{2a}$."  # "formula" + "ac"
    assert _found(_index(solution), page) == [("toy:0", "ngram")]


def test_texts_without_an_indexed_window_are_matched_whole():
    problem = r"Compute $\tan 5^\circ \tan 25^\circ \tan 45^\circ \tan 165^\circ$."  # 13 tokens, 1 word
    index = _index(problem)
    assert (index.stats.ngrams, index.stats.whole_texts, index.stats.undetectable_texts) == (0, 1, 0)
    (m,) = index.find(tokenize(f"Homework 3. {problem} Due Monday."))
    assert (m.item_id, m.kind, m.matched) == ("toy:0", "exact", " ".join(tokenize(problem)))
    assert _found(index, r"Compute $\tan 5^\circ \tan 25^\circ \tan 45^\circ \tan 165^\circ + 1$") == [
        ("toy:0", "exact")
    ]
    assert _found(index, r"compute \tan 5 \circ \tan 25 \circ \tan 45 \circ \tan 60 \circ") == []
    assert index.collisions == 0  # a text's first n-gram without the rest is no collision
    # two texts sharing their first n-gram are told apart
    other = problem.replace("165", "175")
    both = _index(problem, other)
    assert both.stats.whole_texts == 2 and _found(both, other) == [("toy:1", "exact")]
    # formulas without any word are not matched whole (min_wordlike_whole=1), unless asked
    bare = r"$\binom{10}{4} = \frac{10!}{4!6!} = \frac{10\cdot 9\cdot 8\cdot 7}{4\cdot 3\cdot 2\cdot 1} = 210$"
    assert _index(bare).stats.undetectable_texts == 1 and _found(_index(bare), bare) == []
    assert _found(_index(bare, min_wordlike_tokens=0, min_wordlike_whole=0), bare) == [("toy:0", "ngram")]


def test_configurable_n():
    index = _index(LONG, n=13)
    assert _found(index, "all but nine run away how many sheep does the farmer have") == []
    assert _found(index, "and all but nine run away how many sheep does the farmer have left") == [("toy:0", "ngram")]


def test_template_ngrams_shared_by_many_items_can_be_dropped():
    template = "express your answer as a common fraction in lowest terms please"
    texts = [f"Problem {w}: compute the odds. {template}" for w in ("one", "two", "three")]
    assert len(_index(*texts).find(tokenize(template))) >= 1
    filtered = _index(*texts, max_items_per_ngram=3)
    assert filtered.stats.template_ngrams_dropped > 0
    assert filtered.find(tokenize(template)) == []
    assert _found(filtered, texts[1]) == [("toy:1", "ngram")]  # the items themselves still match


def test_hash_hits_are_verified_against_the_stored_text():
    index = _index(LONG)
    benchmark, item, field, _ = index.texts[0]
    index.texts[0] = (benchmark, item, field, "something else entirely")  # as if the hash collided
    assert _found(index, LONG) == []
    assert index.collisions == len(tokenize(LONG)) - 10 + 1


def test_identical_texts_are_indexed_once():
    index = _index(LONG, LONG.upper())
    assert index.stats.texts_duplicate == 1 and index.stats.texts_indexed == 1


def test_round_trip_through_bytes_and_file(tmp_path):
    index = _index(LONG, SHORT)
    path = str(tmp_path / "index.npz")
    index.save(path)
    again = BenchmarkIndex.load(path)
    assert again.config == index.config and again.texts == index.texts
    assert (
        _found(again, LONG + " " + SHORT)
        == _found(index, LONG + " " + SHORT)
        == [("toy:0", "ngram"), ("toy:1", "exact")]
    )
    assert again.memory_bytes == index.memory_bytes > 0


# ---------------------------------------------------------------------------- benchmark specs
def test_bundled_specs():
    assert [s.name for s in parse_specs(None)] == ["gsm8k", "math", "cmath", "gaokao_mathqa", "gaokao_mathcloze"]
    assert parse_spec("math") == [BUNDLED["math"]]
    first = next(read_texts(BUNDLED["math"]))
    assert (first.item_id, first.field) == ("test/algebra/1.json", "problem")
    qa = next(read_texts(BUNDLED["gaokao_mathqa"]))
    assert qa.field == "question+options" and "(D)" in qa.text


def test_custom_jsonl_and_parquet_specs(tmp_path):
    rows = [
        {"q": "What is two plus two?", "sol": ["Two plus two", "is four."], "uid": "a1"},
        {"q": None, "sol": "Nothing here", "uid": "a2"},
    ]
    jsonl = tmp_path / "bench.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    parquet = tmp_path / "bench.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": r["q"], "uid": r["uid"]} for r in rows]), parquet)

    (spec,) = parse_spec(f"mine={jsonl}:q,q+sol:uid")
    assert spec.texts == (("q",), ("q", "sol")) and spec.id_field == "uid"
    got = [(t.item_id, t.field, t.text) for t in read_texts(spec)]
    assert got == [
        ("a1", "q", "What is two plus two?"),
        ("a1", "q+sol", "What is two plus two?\nTwo plus two\nis four."),
        ("a2", "q+sol", "Nothing here"),
    ]
    (pspec,) = parse_spec(f"pq={parquet}:q")
    assert [(t.item_id, t.text) for t in read_texts(pspec)] == [("pq:0", "What is two plus two?")]


def test_bad_specs_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="bad benchmark spec"):
        parse_spec("nonsense")
    with pytest.raises(ValueError, match="more than once"):
        parse_specs(["math", "default"])
    path = tmp_path / "b.jsonl"
    path.write_text('{"question": "x"}\n')
    with pytest.raises(ValueError, match="occur in no row"):
        list(read_texts(parse_spec(f"b={path}:qestion")[0]))
    path.write_text('{"question": "x"}\nnot json\n')
    with pytest.raises(ValueError, match="not valid JSON"):
        list(read_texts(parse_spec(f"b={path}:question")[0]))
