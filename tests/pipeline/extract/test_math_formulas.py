"""Per-mechanism tests of the math-preserving extractor, on small snippets cut from the real
pages of shared/data/html (named beside each snippet), wrapped in enough prose that the
main-text extractor keeps the paragraph."""

from __future__ import annotations

import re

import pytest
from lxml import html as lxml_html

from pipeline.extract.html_math import MAX_HTML_CHARS, Extracted, extract_main_text
from pipeline.extract.math_formulas import SENTINELS, clean_tex, tex_from_image

PROSE = (
    "<p>This paragraph of ordinary prose is here so that the extractor sees an article with "
    "real sentences around the formulas, as on a real web page about mathematics.</p>"
)


def page(body: str, head: str = "", title: str = "A page about math") -> str:
    return (
        f"<html><head><title>{title}</title>{head}</head><body><article>"
        f"<h1>{title}</h1>{PROSE}{body}{PROSE}</article></body></html>"
    )


def extract(body: str, head: str = "") -> Extracted:
    result = extract_main_text(page(body, head))
    assert not any(c in result.text for c in SENTINELS)
    return result


def math_segments(text: str) -> list[str]:
    return re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", text, re.DOTALL)


# -- scripts ---------------------------------------------------------------------------------


def test_mathjax_script_tags_inline_and_display():
    # mineru__ccmath__mathtex_script_type.html (the empty and "null" scripts hold no formula)
    r = extract(
        '<p>Take <script type="math/tex">x+\\sqrt{1-x^2}</script> and the famous '
        '<script type="math/tex; mode=display">E=mc^2</script> as examples.</p>'
        '<script type="math/tex"></script><script type="math/tex">null</script>'
    )
    assert "Take $x+\\sqrt{1-x^2}$ and the famous" in r.text
    assert "$$E=mc^2$$" in r.text
    assert "null" not in r.text
    assert r.num_formulas == 2


def test_text_tex_script_type_is_math_too():
    # mathjax-demos__v2-support_v2-script-tags.html: a div holding only the two scripts
    r = extract(
        '<div class="show display"><script type="text/tex">x + 1</script>'
        '<script type="text/tex; mode=display">x+1\\over x-1</script></div>'
    )
    assert "$x + 1$" in r.text and "$$x+1\\over x-1$$" in r.text


def test_mathjax_v2_rendered_copies_are_not_duplicated():
    r = extract(
        '<p>Let <span class="MathJax_Preview">a_1</span><span class="MathJax" id="MathJax-Element-1-Frame">'
        '<nobr><span class="math">a1</span></nobr><span class="MJX_Assistive_MathML"><math><msub><mi>a</mi>'
        '<mn>1</mn></msub></math></span></span><script type="math/tex" id="MathJax-Element-1">a_1</script>'
        " be the first term of the sequence that we study here.</p>"
    )
    assert r.text.count("a_1") == 1 and "$a_1$" in r.text
    assert r.num_formulas == 1


def test_asciimath_script_becomes_latex():
    r = extract(
        '<p>The roots are <script type="math/asciimath">x=(-b +- sqrt(b^2 - 4ac))/(2a)</script> in general.</p>'
    )
    (segment,) = [a or b for a, b in math_segments(r.text)]
    assert "\\frac" in segment and "\\sqrt" in segment and "\\pm" in segment


# -- rendered output -------------------------------------------------------------------------


def test_katex_annotation_and_display():
    # the structure KaTeX writes (mineru__ccmath__katex_mathjax.html)
    katex = (
        '<span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>x</mi></mrow>'
        '<annotation encoding="application/x-tex">{x}_{n+1} = \\frac{x_n}{2}</annotation></semantics></math></span>'
        '<span class="katex-html" aria-hidden="true"><span class="base">x n+1 = xn 2</span></span></span>'
    )
    r = extract(f'<p>The next term {katex} halves it.</p><p><span class="katex-display">{katex}</span></p>')
    assert "The next term ${x}_{n+1} = \\frac{x_n}{2}$ halves it." in r.text
    assert "$${x}_{n+1} = \\frac{x_n}{2}$$" in r.text
    assert "xn 2" not in r.text  # the rendered glyphs are gone
    assert r.num_formulas == 2


def test_wikipedia_math_element_keeps_one_copy_without_displaystyle():
    # readability__wikipedia-3.html: "is denoted by , then" with plain trafilatura
    r = extract(
        '<p>If the conjugate transpose of a matrix <span class="mwe-math-element"><span class="mwe-math-mathml-inline '
        'mwe-math-mathml-a11y" style="display: none;"><math xmlns="http://www.w3.org/1998/Math/MathML" '
        'alttext="{\\displaystyle A}"><semantics><mrow><mi>A</mi></mrow><annotation encoding="application/x-tex">'
        '{\\displaystyle A}</annotation></semantics></math></span><img src="https://wikimedia.org/api/rest_v1/media/'
        'math/render/svg/7daff47fa58cdfd29dc333def748ff5fa4c923e3" class="mwe-math-fallback-image-inline" '
        'aria-hidden="true" alt="{\\displaystyle A}"></span> is denoted by <span class="mwe-math-element">'
        '<math alttext="{\\displaystyle A^{\\mathsf {H}}}"><semantics><mi>A</mi><annotation encoding="application/x-tex">'
        '{\\displaystyle A^{\\mathsf {H}}}</annotation></semantics></math><img class="mwe-math-fallback-image-inline" '
        'alt="{\\displaystyle A^{\\mathsf {H}}}" src="x.svg"></span>, then the Hermitian property can be written.</p>'
    )
    assert "matrix $A$ is denoted by $A^{\\mathsf {H}}$, then" in r.text
    assert r.num_formulas == 2


def test_mathml_without_tex_is_converted_and_prefixed_mathml_too():
    # mineru__ccmath__mathjax-mml-chtml_prefix.html
    mml = (
        '<{p}math display="block"><{p}mi>x</{p}mi><{p}mo>=</{p}mo><{p}mfrac><{p}mrow><{p}mo>−</{p}mo><{p}mi>b</{p}mi>'
        "</{p}mrow><{p}mrow><{p}mn>2</{p}mn><{p}mi>a</{p}mi></{p}mrow></{p}mfrac></{p}math>"
    )
    r = extract(f"<p>Standard form:</p>{mml.format(p='')}<p>Prefixed form:</p>{mml.format(p='m:')}")
    assert r.text.count("$$x=\\frac{-b}{2a}$$") == 2


def test_mathjax3_container_with_assistive_mathml_and_custom_formula_element():
    # readability__mathjax.html and mineru__ccmath__math_physicsforums_2.html
    r = extract(
        '<p>When <mjx-container class="MathJax" jax="CHTML"><mjx-math aria-hidden="true"><mjx-mi><mjx-c class="mjx-c1D44E">'
        '</mjx-c></mjx-mi></mjx-math><mjx-assistive-mml display="inline"><math><mi>a</mi><mo>≠</mo><mn>0</mn></math>'
        "</mjx-assistive-mml></mjx-container>, there are two solutions to the quadratic equation.</p>"
        '<p>Newton\'s second law of motion reads <mjx-container display="true" jax="CHTML">'
        '<formula id="mathJaxEqu" class="mathJaxEqu">\\vec{F} = m\\vec{a}</formula></mjx-container> in vector form.</p>'
    )
    assert "When $a\\ne 0$, there are" in r.text
    assert "$$\\vec{F} = m\\vec{a}$$" in r.text


# -- images ----------------------------------------------------------------------------------


def test_codecogs_alt_and_mimetex_url():
    # mineru__ccmath__img_codecogs_com.html and mineru__ccmath__img_mimetex_cgi.html
    r = extract(
        '<p>The range is <img src="//latex.codecogs.com/gif.latex?IQR&amp;space;=&amp;space;Q_{3}-Q_{1}" '
        'alt="IQR = Q_{3}-Q_{1}" align="absmiddle"> for the quartiles of the sample.</p>'
        '<p>We have <img src="/cgi-bin/mimetex.cgi?\\alpha(f(x) ) = \\alpha(x)+1" align="middle" /> for the '
        "Abel function of the map.</p>"
    )
    assert "$IQR = Q_{3}-Q_{1}$" in r.text
    assert "$\\alpha(f(x) ) = \\alpha(x)+1$" in r.text


def test_ordinary_images_are_not_formulas():
    tree = lxml_html.fragment_fromstring('<img src="https://i0.wp.com/imageshack.us/U1BKZz.png" alt="cw">')
    assert tex_from_image(tree) is None
    sphinx = lxml_html.fragment_fromstring('<img class="math" src="_images/math/a.png" alt="\\alpha^2">')
    assert tex_from_image(sphinx) == "\\alpha^2"


# -- TeX in text -----------------------------------------------------------------------------


def test_delimited_tex_in_text_and_sphinx_display_div():
    r = extract(
        "<p>When \\(a \\ne 0\\), there are two solutions to \\(ax^2 + bx + c = 0\\) and they are</p>"
        '<div class="math notranslate nohighlight">\\[x_{1,2} = {-b \\pm \\sqrt{b^2-4ac} \\over 2a}\\]</div>'
        "<p>\\begin{align} \\dot{x} & = \\sigma(y-x) \\end{align}</p>"
    )
    assert "When $a \\ne 0$, there are two solutions to $ax^2 + bx + c = 0$" in r.text
    assert "$$x_{1,2} = {-b \\pm \\sqrt{b^2-4ac} \\over 2a}$$" in r.text  # no "\_" escaping either
    assert "$$\\begin{align} \\dot{x} & = \\sigma(y-x) \\end{align}$$" in r.text
    assert r.num_formulas == 4


def test_single_dollars_only_where_the_page_configures_them():
    body = '<p>The strain <span class="math-container">$h$</span> costs $5 and $10 in this shop, a lot.</p>'
    config = '<script type="text/x-mathjax-config">MathJax.Hub.Config({tex2jax: {inlineMath: [["$", "$"], ["\\\\(","\\\\)"]]}});</script>'
    assert extract(body).num_formulas == 0
    assert extract(body, head=config).num_formulas == 2  # "$h$" and, as MathJax would, "$5 and $"


def test_forum_delimiters_from_katex_autorender_config():
    # mineru__ccmath__math_physicsforums_2.html
    config = (
        '<script>const OPTS = {"delimiters": [{left: "[imath]", right: "[/imath]", display: false},'
        '{left: "[math]",  right: "[/math]", display: true}]};</script>'
    )
    r = extract(
        "<p>Gauss's law [math]\\nabla \\cdot \\vec{E} = \\frac{\\rho}{\\varepsilon_0}[/math] and [imath]x^2[/imath] too.</p>",
        config,
    )
    assert "$$\\nabla \\cdot \\vec{E} = \\frac{\\rho}{\\varepsilon_0}$$" in r.text and "$x^2$" in r.text


def test_data_attribute_and_custom_element():
    r = extract(
        '<p>The value <span class="math" data-expr="\\frac{1}{2}"></span> and <tex>e^{i\\pi}+1=0</tex> both appear.</p>'
    )
    assert "$\\frac{1}{2}$" in r.text and "$e^{i\\pi}+1=0$" in r.text


# -- contract ----------------------------------------------------------------------------------


def test_title_and_clean_tex():
    assert extract_main_text(page(PROSE, title="Hermitian matrix - Wikipedia")).title.startswith("Hermitian matrix")
    assert clean_tex("{\\displaystyle a_{ij}={\\overline {a_{ji}}}}") == "a_{ij}={\\overline {a_{ji}}}"
    assert clean_tex("{\\displaystyle a}+{b}") == "{\\displaystyle a}+{b}"  # not one wrapper: kept


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "\x00\x01\x02binary\xff" * 1000,
        "<html><body>" + "<div>" * 50_000 + "deep" + "</div>" * 50_000,
        "<math><mfrac><mi>x</mi>",
        '<script type="math/mml"><math><mi>x</mi',
        "\u2983 sentinel \u2985 in input",
    ],
    ids=["empty", "blank", "binary", "deep-nesting", "broken-mathml", "broken-mml-script", "sentinels"],
)
def test_never_raises_on_bad_html(bad):
    result = extract_main_text(bad)
    assert isinstance(result, Extracted) and not any(c in result.text for c in SENTINELS)


def test_huge_page_is_capped():
    huge = page("<p>" + "word " * (MAX_HTML_CHARS // 5 + 1000) + "</p>")
    result = extract_main_text(huge)
    assert isinstance(result, Extracted)
