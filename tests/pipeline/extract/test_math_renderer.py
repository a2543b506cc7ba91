"""Reading a page's math renderer set-up, TeX elements, code blocks and tables.

Each renderer configuration is a minimal page written the way the renderer's documentation
(and the shared pages named in each test) write it; the shared katex_mathjax page is used as
it is. Negative cases: without a renderer, prices and code stay text; ignore-class regions
and code keep their delimiters untouched.
"""

from __future__ import annotations

import json
import re

import lxml.html
import pytest

from pipeline.extract.fast_text import fast_main_text
from pipeline.extract.html_math import extract_main_text
from pipeline.extract.math_reference import find_source_formulas, retention
from pipeline.extract.math_renderer import loads_math_renderer, read_renderer, tex_evidence

FILLER = (
    "<p>This paragraph gives the page enough ordinary prose for the main text extractor to treat the "
    "article as content worth keeping, with several sentences of plain words.</p>"
)


def page(body: str, head: str = "") -> str:
    return f"<html><head><title>t</title>{head}</head><body><article><h1>Notes</h1>{FILLER}{body}{FILLER}</article></body></html>"


MATHJAX2 = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({ tex2jax: { inlineMath: [['$','$'], ['\\\\(','\\\\)']], processEscapes: true,
  ignoreClass: "tex2jax_ignore|dno", processClass: "math-here" } });
</script><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js?config=TeX-AMS_HTML"></script>"""
MATHJAX3 = """<script>window.MathJax = { tex: { inlineMath: [['$', '$'], ['\\\\(', '\\\\)']] },
  options: { ignoreHtmlClass: 'no-math', processHtmlClass: 'yes-math' } };</script>
<script id="MathJax-script" async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>"""
KATEX_AUTO = """<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/katex@0.16.9/dist/katex.min.css">
<script defer src="https://cdn.jsdelivr.net/npm/katex@0.16.9/dist/katex.min.js"></script>
<script defer src="https://cdn.jsdelivr.net/npm/katex@0.16.9/dist/contrib/auto-render.min.js"
 onload="renderMathInElement(document.body);"></script>
<script>document.addEventListener("DOMContentLoaded", function() {
  renderMathInElement(document.body, { delimiters: [ {left: "@@", right: "@@", display: true},
    {left: "%%", right: "%%", display: false} ], ignoredClasses: ["raw-tex"] }); });</script>"""


def text_of(html: str) -> str:
    return extract_main_text(html).text


# -- renderer configuration -----------------------------------------------------------------


def test_mathjax2_tex2jax_inline_dollars_and_ignore_class():
    html = page(
        "<p>The energy $E = mc^2$ of a body at rest is what the page typesets inline here.</p>"
        '<div class="dno"><p>To write math type $x^2$ between dollars, as this help box explains in words.</p></div>',
        MATHJAX2,
    )
    out = text_of(html)
    assert "$E = mc^2$" in out
    # the ignore class (configured "tex2jax_ignore|dno") is untouched: same characters as the page
    assert "type $x^2$ between" in out
    result = extract_main_text(html)
    assert result.formula_sources == {"delimited configured": 1}


def test_process_class_inside_an_ignored_region_is_math_again():
    html = page(
        '<div class="tex2jax_ignore"><p>Ignored region: \\(a+b\\) stays as typed in this long sentence.</p>'
        '<p class="math-here">Processed again: \\(c+d\\) becomes math in this long sentence.</p></div>',
        MATHJAX2,
    )
    out = text_of(html)
    assert "\\(a+b\\) stays" in out
    assert "$c+d$ becomes" in out


def test_mathjax3_window_config_and_ignore_html_class():
    html = page(
        "<p>Inline $\\alpha_1$ and display \\[\\int_0^1 x\\,dx\\] in a MathJax 3 page with prose.</p>"
        '<p class="no-math">Literal $not math$ in an ignored paragraph with many more words.</p>',
        MATHJAX3,
    )
    renderer = read_renderer([MATHJAX3], ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"])
    assert renderer.loaded and "no-math" in renderer.ignore and "yes-math" in renderer.process
    out = text_of(html)
    assert "$\\alpha_1$" in out and "$$\\int_0^1 x\\,dx$$" in out
    assert "Literal $not math$ in" in out


def test_katex_render_math_in_element_custom_delimiters_and_ignored_classes():
    html = page(
        "<p>Display @@\\sum_{k=1}^n k@@ and inline %%\\sqrt{2}%% rendered by KaTeX auto-render here.</p>"
        '<p class="raw-tex">The source %%\\sqrt{3}%% shown raw in an ignored class paragraph of text.</p>',
        KATEX_AUTO,
    )
    out = text_of(html)
    assert "$$\\sum_{k=1}^n k$$" in out and "$\\sqrt{2}$" in out
    assert "%%\\sqrt{3}%%" in out


def test_renderer_loaded_from_a_bundle_is_seen_through_its_stylesheet_or_fonts():
    bundle = read_renderer(["webpackChunk.push([1])"], ["/static/js/main.3f9a.js"], [".katex { font: 1.21em KaTeX_Main }"])
    assert bundle.loaded
    fonts = read_renderer([], ["/static/app.js"], [], ["/fonts/KaTeX_Main-Regular.woff2"])
    assert fonts.loaded
    assert not read_renderer(["var x = Math.max(1, 2);"], ["/static/app.js"], ["body { color: red }"]).loaded


# -- TeX written as element text --------------------------------------------------------------


def test_custom_elements_whose_text_is_tex_are_kept_in_place():
    html = page(
        "<p>In tabular settings <d-math>Q(s, a)</d-math> is a table, and <x-equation>\\frac{a}{b}</x-equation> "
        "is a ratio; the policy <d-math>\\pi_\\theta(a \\mid s)</d-math> is a distribution.</p>"
        "<d-math block>\\mathbb{E}_{\\pi}\\left[\\sum_t \\gamma^t r_t\\right]</d-math>"
        "<p>The sentence after the display formula continues with plain words of prose.</p>",
        '<script src="https://distill.pub/template.v2.js"></script>',
    )
    result = extract_main_text(html)
    out = result.text
    assert "In tabular settings $Q(s, a)$ is a table, and $\\frac{a}{b}$ is a ratio" in out
    assert "$\\pi_\\theta(a \\mid s)$" in out
    assert "$$\\mathbb{E}_{\\pi}\\left[\\sum_t \\gamma^t r_t\\right]$$" in out
    assert result.formula_sources == {"tex element": 4}


def test_classed_spans_of_one_kind_count_together_on_a_katex_page():
    # pandoc --katex writes bare TeX in span.math; KaTeX renders every element of the class
    html = page(
        '<p>Let <span class="math inline">x</span> be real and <span class="math inline">n^2</span> its '
        'square, with <span class="math inline">\\alpha \\in (0, 1)</span> a rate in this sentence.</p>'
        '<p><span class="math display">\\frac{a}{b}</span></p>'
        '<p>A <span class="badge">New</span> label and a <span class="price">5</span> price are not math.</p>',
        '<script src="https://cdn.jsdelivr.net/npm/katex/dist/katex.min.js"></script>',
    )
    out = text_of(html)
    assert "Let $x$ be real and $n^2$ its square, with $\\alpha \\in (0, 1)$ a rate" in out
    assert "$$\\frac{a}{b}$$" in out
    assert "A New label and a 5 price" in out


def test_math_tex_span_of_ckeditor():
    html = page(
        '<p>The fraction <span class="math-tex">\\frac{a}{b}</span> is in lowest terms when they are coprime.</p>',
        '<script src="/ckeditor/plugins/mathjax/MathJax.js"></script>',
    )
    assert "The fraction $\\frac{a}{b}$ is in lowest terms" in text_of(html)


def test_no_renderer_no_math_from_prices_classed_spans_or_code():
    html = page(
        "<p>Tickets cost $5 and $6 at the door, or $10 for both nights of the festival.</p>"
        '<p>The key <span class="kbd">ctrl_x</span> and <span class="tag">\\alpha</span> are labels.</p>'
        "<p>Call <code>f(x_1, x^2)</code> with two arguments in the usual way here.</p>"
    )
    result = extract_main_text(html)
    assert result.num_formulas == 0
    assert "Tickets cost $5 and $6 at the door" in result.text
    assert "The key ctrl_x and \\alpha are labels" in result.text
    assert "Call `f(x_1, x^2)` with" in result.text


def test_tex_evidence_separates_tex_from_prose_and_code():
    assert tex_evidence("\\frac{a}{b}") == 2
    assert tex_evidence("k_{n+1} = n^2 + k_n^2") == 2
    assert tex_evidence("x") == 1 and tex_evidence("f(x) = 1") == 1
    assert tex_evidence("Inline math uses a span rather than a div") == 0
    assert tex_evidence("my_variable = other_value;") == 0
    assert tex_evidence("\\frac{a}{b") == 0  # unbalanced
    assert tex_evidence("see https://example.com/a_b") == 0
    assert tex_evidence("\\(x\\)") == 0  # delimited: the text rewrite's job


def test_shared_katex_page_div_and_span_math_come_back_in_place(shared_data):
    html = (shared_data / "html/math/mineru__ccmath__katex_mathjax.html").read_text(encoding="utf-8", errors="replace")
    result = extract_main_text(html)
    out = result.text
    # a div.math holding only TeX follows its heading as a display formula
    assert re.search(r"Repeating fractions\n\$\$\\frac\{1\}\{\\Bigl\(\\sqrt\{\\phi \\sqrt\{5\}\}", out)
    assert "in-line math: $k_{n+1} = n^2 + k_n^2 - k_{n-1}$, followed by" in out
    # the <pre> showing the markup is code, not math
    assert '```\n<span class="math">...</span>\n```' in out
    formulas = find_source_formulas(html)
    kept, lost = retention(formulas, out)
    assert kept >= len(formulas) - 1, [f.text for f in lost]
    assert result.formula_sources.get("tex element", 0) >= 40


# -- code blocks and tables -------------------------------------------------------------------


def test_code_block_keeps_lines_and_indentation_and_its_dollars():
    html = page(
        '<pre><code class="language-python">def price(x):\n    if x &gt; 0:\n        return "$" + str(x) + "$"\n'
        "    return None</code></pre>"
        "<p>Use <code>price</code> to format with a dollar sign, as $x$ is configured as math here.</p>",
        MATHJAX2,
    )
    out = text_of(html)
    assert '```\ndef price(x):\n    if x > 0:\n        return "$" + str(x) + "$"\n    return None\n```' in out
    assert "Use `price` to format" in out and "as $x$ is configured" in out


def test_highlighted_code_lines_are_line_breaks():
    html = page(
        '<pre class="highlight"><div class="line"><span class="k">for</span> i <span class="k">in</span> xs:</div>'
        '<div class="line">    <span class="n">print</span>(i)</div></pre>'
    )
    assert "```\nfor i in xs:\n    print(i)\n```" in text_of(html)


def test_table_with_formulas_keeps_one_row_per_line():
    html = page(
        "<table><tr><th>function</th><th>derivative</th></tr>"
        '<tr><td><span class="math">x^n</span></td><td><span class="math">n x^{n-1}</span></td></tr>'
        '<tr><td><span class="math">\\sin x</span></td><td><span class="math">\\cos x</span></td></tr></table>',
        '<script src="https://cdn.jsdelivr.net/npm/katex/dist/katex.min.js"></script>',
    )
    lines = text_of(html).splitlines()
    assert any(re.fullmatch(r"\|\s*\$x\^n\$\s*\|\s*\$n x\^\{n-1\}\$\s*\|\s*", line) for line in lines), lines
    assert any(re.fullmatch(r"\|\s*\$\\sin x\$\s*\|\s*\$\\cos x\$\s*\|\s*", line) for line in lines), lines


def test_restored_table_rows_are_lines_with_cells(shared_data):
    from pipeline.extract.math_sections import list_blocks

    root = lxml.html.fromstring("<table><tr><td>a</td><td>⦃x^2⦄</td></tr><tr><td>b</td><td>c</td></tr></table>")
    assert [b.text for b in list_blocks(root)] == ["a | ⦃x^2⦄", "b | c"]


def test_dollars_inferred_when_the_config_is_in_an_external_file():
    head = '<script src="/assets/mathjax-config.js"></script><script src="/vendor/mathjax/tex-chtml.js"></script>'
    html = page(
        "<p>The loss $\\mathcal{L}(\\theta)$ is minimised over $\\theta \\in \\mathbb{R}^d$ with step "
        "$\\eta_t = t^{-1/2}$ in this long sentence about optimisation.</p>",
        head,
    )
    out = text_of(html)
    assert "$\\mathcal{L}(\\theta)$" in out and extract_main_text(html).num_formulas == 3
    prices = page("<p>Plans cost $5 a month, $50 a year, or $99 once; the $5 plan has ads in it.</p>", head)
    assert extract_main_text(prices).num_formulas == 0
    no_renderer = html.replace(head, "")
    assert extract_main_text(no_renderer).num_formulas == 0


def test_loads_math_renderer_agrees_with_the_labelled_markers_of_every_shared_page(shared_data):
    """The page-level renderer flag (a row's ``math_renderer``) against the upstream-independent
    annotation of ``html/pages.jsonl``: a page loads a renderer exactly when its markers name
    MathJax or KaTeX; no labelled non-math page loads one; labelled math pages whose formulas the
    extractor cannot find (here: two Physics Forums posts and a MathJax demo that keeps its TeX
    in a form) still carry the flag."""
    rows = [json.loads(line) for line in (shared_data / "html" / "pages.jsonl").read_text().splitlines()]
    flags = {}
    for row in rows:
        html = (shared_data / row["file"]).read_text(encoding="utf-8", errors="replace")
        flags[row["file"]] = loads_math_renderer(html)
        assert flags[row["file"]] == bool(set(row["math_markers"]) & {"mathjax", "katex"}), row["file"]
        assert fast_main_text(html).math_renderer is flags[row["file"]], row["file"]  # the fast tier reads it on the way
    assert not any(flags[r["file"]] for r in rows if r["label"] == "nonmath")
    assert sum(flags[r["file"]] for r in rows if r["label"] == "math") >= 20
    without_formulas = [r["file"] for r in rows if r["label"] == "math" and flags[r["file"]]
                        and extract_main_text((shared_data / r["file"]).read_text(encoding="utf-8", errors="replace")).num_formulas == 0]
    assert len(without_formulas) >= 2


@pytest.mark.parametrize("html", ["", "<html>", "<p>mathjax is a word here</p>", "\x00" * 10, "<script src='katex.js'"])
def test_loads_math_renderer_never_raises(html):
    assert loads_math_renderer(html) in (True, False)
    assert loads_math_renderer("<p>plain page</p>") is False
    assert loads_math_renderer(page("", KATEX_AUTO)) is True and loads_math_renderer(page("", MATHJAX3)) is True
