"""The default index on real pages: planted benchmark leaks are all caught and named; clean
real pages are kept (every removal is explained below)."""

from __future__ import annotations

from pipeline.decontaminate.benchmarks_spec import parse_specs
from pipeline.decontaminate.index import IndexConfig, build_index
from pipeline.decontaminate.normalize import tokenize


def test_every_planted_leak_is_caught_and_names_its_item(default_index, leaks):
    assert len(leaks) == 6
    for leak in leaks:
        matches = default_index.find(tokenize(leak.text))
        named = {(m.benchmark, m.item_id) for m in matches}
        assert (leak.benchmark, leak.item_id) in named, f"{leak.kind}: found only {named}"
        # the audit's matched n-gram is real benchmark text of that item
        m = next(m for m in matches if (m.benchmark, m.item_id) == (leak.benchmark, leak.item_id))
        assert m.matched and m.matched in " ".join(tokenize(leak.text))


def test_clean_real_pages_are_kept(default_index, clean_pages):
    """66 real pages (the 36 labelled math HTML pages, the 30 Common Crawl documents): the
    default rule removes none of them."""
    assert len(clean_pages) == 66
    removed = {name: default_index.find(tokenize(text)) for name, text in clean_pages}
    removed = {k: v for k, v in removed.items() if v}
    assert removed == {}


def test_the_plain_paper_rule_removes_exactly_two_explained_pages(clean_pages):
    """Without the word-like-token condition (``min_wordlike_tokens=0``, the paper's plain rule),
    two clean pages are removed, both on windows with no word in them:
    - the MathJax equation-numbering demo lists single letters ``m n o p q r s t u v``, a window
      also found in a MATH algebra problem that lists variables;
    - a Common Crawl document of the Dolma sample lists the numbers ``1 2 3 ... 10``, as do
      MATH counting problems ("the numbers 1, 2, 3, ..., 10").
    That is why windows without a word-like token are not indexed by default."""
    plain = build_index(parse_specs(["math"]), IndexConfig(min_wordlike_tokens=0))
    removed = {}
    for name, text in clean_pages:
        matches = plain.find(tokenize(text))
        if matches:
            removed[name] = matches
    assert sorted(removed) == [
        "html/math/mathjax-demos__page_equation-numbers.html",
        "text/dolma__provided_documents_000.jsonl.gz#8",
    ]
    for matches in removed.values():
        for m in matches:
            assert m.benchmark == "math"
            assert all(not any(ch.isalpha() for ch in tok) or len(tok) == 1 for tok in m.matched.split())
