"""Delimiter discovery from real page configurations and the rewrite of delimited TeX."""

from __future__ import annotations

from pipeline.extract.math_delimiters import Delimiters, page_delimiters, rewrite_delimited_math

# mineru__ccmath__math_physicsforums.html (MathJax v2 tex2jax)
PHYSICSFORUMS = """MathJax.Hub.Config({ tex2jax: { element: null,
        inlineMath: [ ['[itex]', '[/itex]'], ['##', '##'] ],
        displayMath: [ ['[tex]', '[/tex]'], ['$$', '$$'] ], processEscapes: true } });"""
# mineru__ccmath__stackexchange_1_span-math-container_latex_mathjax.html
STACKEXCHANGE = (
    r"""tex2jax: { inlineMath: [["$", "$"], ["\\\\(","\\\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]] }"""
)
# mathjax-demos__page_tex-chtml.html (MathJax v3/v4 syntax)
MATHJAX4 = "MathJax = { tex: {inlineMath: {'[+]': [['$', '$']]}} };"


def test_page_delimiters_read_each_configuration_style():
    pf = page_delimiters([PHYSICSFORUMS])
    assert ("[itex]", "[/itex]") in pf.inline and ("##", "##") in pf.inline
    assert ("[tex]", "[/tex]") in pf.display
    assert ("$", "$") in page_delimiters([STACKEXCHANGE]).inline
    assert ("$", "$") in page_delimiters([MATHJAX4]).inline
    assert ("$", "$") not in page_delimiters(["var price = '$5';"]).inline
    assert page_delimiters([], ["https://www.intmath.com/ASCIIMathML.js"]).asciimath


def test_rewrite_counts_and_normalises_each_delimiter():
    delims = page_delimiters([PHYSICSFORUMS])
    text = "Force ##F=ma## and [itex]x_1[/itex], shown as [tex]E=mc^2[/tex] or \\[a^2+b^2\\] or \\(y\\)."
    out, n = rewrite_delimited_math(text, delims)
    assert out == "Force $F=ma$ and $x_1$, shown as $$E=mc^2$$ or $$a^2+b^2$$ or $y$."
    assert n == 5


def test_environments_dollars_and_escapes():
    default = Delimiters()
    out, n = rewrite_delimited_math("\\begin{align} a &= b \\\\ c &= d \\end{align} costs $5 and $6", default)
    assert out == "$$\\begin{align} a &= b \\\\ c &= d \\end{align}$$ costs $5 and $6" and n == 1
    dollars = page_delimiters([STACKEXCHANGE])
    out, n = rewrite_delimited_math("a \\$5 fee, then $x$", dollars)
    assert out == "a \\$5 fee, then $x$" and n == 1


def test_unclosed_or_overlong_delimiters_are_left_alone():
    out, n = rewrite_delimited_math("open \\( never closed", Delimiters())
    assert (out, n) == ("open \\( never closed", 0)
    dollars = page_delimiters([STACKEXCHANGE])
    out, n = rewrite_delimited_math("$a\n\nb$", dollars)  # inline math never spans paragraphs
    assert n == 0


def test_asciimath_backticks_use_the_converter():
    delims = page_delimiters([], ["ASCIIMathML.js"])
    out, n = rewrite_delimited_math("area `pi r^2` here", delims, lambda s: "CONVERTED")
    assert out == "area $CONVERTED$ here" and n == 1
