"""Putting back dropped formula sections (``math_sections``), and the AsciiMath work-arounds.

The snippets copy the structure of real pages of shared/data/html (a LibreTexts example box,
a XenForo forum thread, a StackExchange table cell); the extractor's output is given, as
trafilatura wrote it for the real page, so each test checks one decision of the module.
"""

from __future__ import annotations

import lxml.html
import pytest

from pipeline.extract.html_math import _formula_test, extract_main_text
from pipeline.extract.math_asciimath import asciimath_to_latex
from pipeline.extract.math_delimiters import Delimiters
from pipeline.extract.math_formulas import rewrite_formulas
from pipeline.extract.math_sections import _heaviest_chain, list_blocks, restore_dropped_sections

HAS_FORMULA = _formula_test(Delimiters())


def _blocks(html: str):
    root = lxml.html.document_fromstring(html)
    rewrite_formulas(root)
    return list_blocks(root)


def _restore(html: str, extracted: str) -> str:
    return restore_dropped_sections(extracted, _blocks(html), HAS_FORMULA)[0]


INTRO = "Let us try some examples with all four operations on integers and the order of operations."
AFTER = "Our earlier work translating English to algebra also applies to negative numbers."
LIBRETEXTS = f"""<html><body>
<aside><nav><ol><li><a href="#e10">Example \\(\\PageIndex{{10}}\\)</a></li></ol></nav></aside>
<section class="mt-content-container">
<p>{INTRO}</p>
<div class="box-example"><div class="mt-section">
<h5 class="box-legend"><span>Example \\(\\PageIndex{{10}}\\)</span></h5>
<p>Simplify:</p>
<p>\\(7(-2)+4(-7)-6\\)</p>
<p><strong>Solution</strong></p>
<p>\\[\\begin{{array}} {{ll}} {{}} &amp;{{7(-2)+4(-7)-6}} \\\\ {{\\text{{Add.}}}} &amp;{{-42-6}} \\end{{array}}\\]</p>
</div></div>
<p>{AFTER}</p>
<div class="share-buttons"><p>Share \\(x\\) with friends</p></div>
</section>
<div class="sidebar-box"><p>Related: \\(a^2+b^2=c^2\\) and more</p></div>
</body></html>"""


def test_dropped_example_box_is_put_back_in_place():
    out = _restore(LIBRETEXTS, f"{INTRO}\n{AFTER}")
    assert out.split("\n") == [
        INTRO,
        "Example \\(\\PageIndex{10}\\)",
        "Simplify:",
        "\\(7(-2)+4(-7)-6\\)",
        "Solution",
        "\\[\\begin{array} {ll} {} &{7(-2)+4(-7)-6} \\\\ {\\text{Add.}} &{-42-6} \\end{array}\\]",
        AFTER,
    ]


def test_boilerplate_and_formulas_outside_the_main_content_stay_out():
    out = _restore(LIBRETEXTS, f"{INTRO}\n{AFTER}")
    assert "Share" not in out  # trafilatura's boilerplate rule (share-) inside the container
    assert "a^2" not in out  # outside the main container
    assert out.count("PageIndex{10}") == 1  # the table of contents entry stays out


def test_nothing_dropped_means_nothing_changes():
    kept = f"{INTRO}\nExample \\(\\PageIndex{{10}}\\)\nSimplify:\n\\(7(-2)+4(-7)-6\\)\nSolution\n"
    kept += "\\[\\begin{array} {ll} {} &{7(-2)+4(-7)-6} \\\\ {\\text{Add.}} &{-42-6} \\end{array}\\]\n" + AFTER
    assert _restore(LIBRETEXTS, kept) == kept


def test_table_of_contents_entry_does_not_derail_the_alignment():
    # the TOC entry text also occurs in the output (the kept heading): the in-order chain of
    # long blocks must take the heading, so 'Simplify:' and the formula are seen as kept
    kept = f"{INTRO}\nExample \\(\\PageIndex{{10}}\\)\nSimplify:\n\\(7(-2)+4(-7)-6\\)\nSolution\n{AFTER}"
    out = _restore(LIBRETEXTS, kept)
    assert out.count("7(-2)+4(-7)-6\\)") == 1
    assert out.count("\\begin{array}") == 1
    assert out.index("Solution") < out.index("\\begin{array}") < out.index(AFTER)


FORUM = """<html><body><div class="block-body">
<article class="message message--post js-post js-post-101"><div class="message-cell message-cell--user">
<h4>chip</h4><div>Joined Oct 2019</div></div><div class="message-cell message-cell--main">
<div class="bbWrapper">Newton's second law, as everybody learns it at school, is written like this:<br>
<script type="math/tex; mode=display">\\vec{F} = m\\vec{a}</script></div>
<div class="reactions">Reactions: 2 users</div></div></article>
<article class="message message-staffPost message--post js-post js-post-102"><div class="message-cell message-cell--user">
<h4>chip</h4><div>Joined Oct 2019</div></div><div class="message-cell message-cell--main">
<div class="bbWrapper">We have also installed a physics package into MathJax for physics notation support.<br>
Derivatives are written as <script type="math/tex">\\dv{f}{x}</script> in this package.</div></div></article>
<article class="message message--post js-post js-post-103"><div class="message-cell message-cell--user">
<h4>ann</h4><div>Joined May 2020</div></div><div class="message-cell message-cell--main">
<div class="bbWrapper">Thanks, this is awesome and very helpful for all of us here!</div></div></article>
</div></body></html>"""


def test_other_posts_of_a_thread_come_back_without_their_user_boxes():
    kept = (
        "We have also installed a physics package into MathJax for physics notation support.\n"
        "Derivatives are written as \u2983\\dv{f}{x}\u2984 in this package."
    )
    out = _restore(FORUM, kept)
    lines = out.split("\n")
    assert lines[:2] == [
        "Newton's second law, as everybody learns it at school, is written like this:",
        "\u2985\\vec{F} = m\\vec{a}\u2986",
    ]
    assert lines[2:] == kept.split("\n")  # the kept text is untouched, after the earlier post
    assert "Joined" not in out and "Reactions" not in out
    assert "awesome" not in out  # a post without formulas is the extractor's call


def test_partly_kept_table_cell_is_not_written_twice():
    html = """<html><body><article><p>The data is structured into patients and segments, as in the table below.</p>
    <table><tr><td>Segment size</td><td><math><semantics><mn>2</mn><annotation encoding="application/x-tex">
    2^{20}+1</annotation></semantics></math><span> = 1,048,577</span></td></tr></table>
    <p>A cardiologist can look at a specific segment and identify the patterns.</p></article></body></html>"""
    kept = (
        "The data is structured into patients and segments, as in the table below.\n"
        "| Segment size | \u29832^{20}+1\u2984 |\n"
        "A cardiologist can look at a specific segment and identify the patterns."
    )
    assert _restore(html, kept) == kept


def test_hidden_text_is_not_a_block():
    blocks = _blocks(
        '<html><body><div class="post"><span class="d-none">$\\begingroup$</span>'
        "<p>Visible text.<br>Second line.</p><p hidden>secret</p>"
        '<p style="display: none">also secret</p></div></body></html>'
    )
    assert [b.text for b in blocks] == ["Visible text.\nSecond line."]


def test_heaviest_chain_hand_computed():
    # (block, start, end, weight), by block then decreasing start. Block 1 has two places;
    # the chain 0@0-10 (5) -> 1@20-30 (5) -> 3@40-50 (5) weighs 15; block 2 @5-15 (7) can only
    # follow nothing (overlaps block 0), 2 -> 3 weighs 12.
    cands = [(0, 0, 10, 5), (1, 60, 70, 5), (1, 20, 30, 5), (2, 5, 15, 7), (3, 40, 50, 5)]
    assert [c[0] for c in _heaviest_chain(cands)] == [0, 1, 3]
    assert _heaviest_chain(cands)[1][1] == 20


@pytest.mark.parametrize(
    ("asciimath", "latex"),
    [
        ("x if y", "x \\text{if} y"),
        ("a or b", "a \\text{or} b"),  # py-asciimath alone wrote \mathmr{and}
        ("x\\ \\ = 2", "x = 2"),  # the AsciiMath space is not \setminus
    ],
)
def test_asciimath_work_arounds(asciimath, latex):
    assert asciimath_to_latex(asciimath) == latex


def test_touching_inline_formulas_are_kept_apart():
    html = (
        "<html><head><script>MathJax.Hub.Config({tex2jax: {inlineMath: [['$','$']]}});</script></head>"
        "<body><article><p>They usually give a strain of $\\delta L \\over L$$=10^{-21}$ when they reach"
        " the Earth after travelling for a billion years.</p></article></body></html>"
    )
    assert "$\\delta L \\over L$ $=10^{-21}$" in extract_main_text(html).text
