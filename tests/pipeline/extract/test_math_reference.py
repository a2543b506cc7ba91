"""The independent source-formula finder and the retention measure used by the benchmark."""

from __future__ import annotations

from pipeline.extract.math_reference import find_source_formulas, loose_signature, normalize_tex, retention


def test_normalize_and_signature_hand_computed():
    assert normalize_tex("{\\displaystyle a_{ij} = b }") == "a_ij=b"
    assert loose_signature("x=(-b +- sqrt(b^2 - 4ac))/(2a)", "asciimath") == "xbb24ac2a"
    assert loose_signature("x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}") == "xbb24ac2a"
    assert loose_signature("1 ( ϕ 5 − ϕ ) π", "mathml") == "1phi5phipi"


def test_finder_counts_each_mechanism_once():
    html = """<html><head><script>MathJax={tex:{inlineMath:[['$','$']]}}</script></head><body>
    <p>We have <script type="math/tex">a^2</script> and $b_1$ and \\(c\\) and \\[d=1\\].</p>
    <span class="mwe-math-element"><math alttext="{\\displaystyle e}"><semantics><mi>e</mi>
    <annotation encoding="application/x-tex">{\\displaystyle e}</annotation></semantics></math>
    <img class="mwe-math-fallback-image-inline" alt="{\\displaystyle e}" src="e.svg"></span>
    <img src="http://latex.codecogs.com/gif.latex?f^2" alt="f^2"> <img src="photo.jpg" alt="a cat">
    <math><mi>g</mi><mo>+</mo><mn>1</mn></math></body></html>"""
    found = {(f.kind, f.text) for f in find_source_formulas(html)}
    assert found == {
        ("tex", "a^2"),
        ("tex", "b_1"),
        ("tex", "c"),
        ("tex", "d=1"),
        ("tex", "{\\displaystyle e}"),
        ("tex", "f^2"),
        ("mathml", "g + 1"),
    }


def test_retention_needs_math_in_the_output():
    formulas = find_source_formulas("<p>\\(x^2 + y^2\\) and \\(z_1\\)</p>")
    kept, lost = retention(formulas, "as text x^2 + y^2 but math $z_{1}$")
    assert kept == 1 and [f.text for f in lost] == ["x^2 + y^2"]
