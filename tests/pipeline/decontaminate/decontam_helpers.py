"""Helpers for the decontamination tests: real host pages from the shared test data and
benchmark leaks planted into them (also used by ``benchmarks/decontaminate.py``)."""

from __future__ import annotations

import gzip
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from pipeline.decontaminate.benchmarks_spec import BUNDLED
from pipeline.decontaminate.normalize import tokenize


def benchmark_rows(name: str) -> list[dict]:
    with gzip.open(BUNDLED[name].path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def cc_texts(shared: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((shared / "text").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                out.append((f"text/{path.name}#{i}", json.loads(line)["text"]))
    return out


def _page_urls(shared: Path) -> dict[str, str | None]:
    """file (relative to ``shared``) -> the page's URL from ``html/pages.jsonl`` (None when unknown)."""
    urls = {}
    with open(shared / "html" / "pages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            urls[row["file"]] = row.get("url") or None
    return urls


def extracted_text(shared: Path, file: str) -> str:
    """The main text of the HTML page ``file`` (relative to ``shared``) as the real pipeline
    sees it: the project's math-preserving extractor, formulas kept as ``$..$`` TeX."""
    from pipeline.extract.html_math import extract_main_text

    html = (shared / file).read_text(encoding="utf-8", errors="replace")
    return extract_main_text(html, _page_urls(shared).get(file)).text


def math_html_texts(shared: Path) -> list[tuple[str, str]]:
    """(name, main text) of the labelled math HTML pages, extracted as by the extract stage."""
    from pipeline.extract.html_math import extract_main_text

    urls = _page_urls(shared)
    out = []
    for path in sorted((shared / "html" / "math").glob("*.html")):
        name = f"html/math/{path.name}"
        html = path.read_text(encoding="utf-8", errors="replace")
        out.append((name, extract_main_text(html, urls.get(name)).text))
    return out


# ---------------------------------------------------------------------------- planted leaks
@dataclass(frozen=True)
class Leak:
    kind: str  # what was planted
    text: str  # the whole page: a real page with the leak inside
    benchmark: str
    item_id: str


def _insert_middle(host: str, leak: str) -> str:
    """``leak`` as its own paragraph in the middle of ``host`` (at a paragraph break)."""
    paragraphs = host.split("\n")
    mid = len(paragraphs) // 2
    return "\n".join(paragraphs[:mid] + [leak] + paragraphs[mid:])


def _reflow(text: str, width: int) -> str:
    """Re-wrap ``text`` at ``width`` columns with doubled spaces, as a page layout might."""
    return "\n".join(line.replace(" ", "  ") for line in textwrap.wrap(" ".join(text.split()), width))


def _retypeset(tex: str) -> str:
    """The same TeX typed differently: spaced operators, \\dfrac, braced exponents, thin spaces."""

    def inline(m: re.Match) -> str:
        body = m.group(1)
        body = re.sub(r"\s*([+=<>-])\s*", r" \1 ", body)
        body = re.sub(r"\^(\w)", r"^{\1}", body)
        body = body.replace(r"\frac", r"\dfrac").replace(",", r",\,").replace("(", r"\left(").replace(")", r"\right)")
        return f"$ {body} $"

    return re.sub(r"\$([^$]+)\$", inline, tex)


def _display_math(tex: str) -> str:
    """Every inline $..$ of a solution turned into display $$..$$ on its own line."""
    return re.sub(r"\$([^$]+)\$", lambda m: f"\n$$\n{m.group(1)}\n$$\n", tex)


def _fullwidth_digits(text: str) -> str:
    return text.translate({ord(c): 0xFF10 + int(c) for c in "0123456789"})


def _first_with(rows: list[dict], pred) -> int:
    return next(i for i, r in enumerate(rows) if pred(r))


def make_leaks(shared_data: Path) -> list[Leak]:
    """The issue's six planted leaks, each inside a real page of the shared test data."""
    cc = cc_texts(shared_data)
    english = cc[0][1]
    chinese = extracted_text(shared_data, "html/nonmath/mineru__html__zh.html")
    gsm8k, math, cmath = benchmark_rows("gsm8k"), benchmark_rows("math"), benchmark_rows("cmath")
    cloze = benchmark_rows("gaokao_mathcloze")

    g1, g2 = 7, 211  # any rows work; two different ones so each leak names its own item
    m_problem = _first_with(math, lambda r: r["problem"].count("$") >= 4 and r"\frac" in r["problem"])
    m_solution = _first_with(math, lambda r: r["solution"].count("$") >= 6 and "[asy]" not in r["solution"])
    c_item = 100
    # the cloze question with the fewest tokens (a short item)
    k_item = min(range(len(cloze)), key=lambda i: len(tokenize(cloze[i]["question"])))
    short_cloze = cloze[k_item]["question"].replace(r"(\quad)", "______").replace(r"\frac", r"\dfrac")
    short_cloze = short_cloze.replace(",", "，")
    return [
        Leak("gsm8k question verbatim", _insert_middle(english, gsm8k[g1]["question"]), "gsm8k", f"gsm8k:{g1}"),
        Leak(
            "gsm8k question reflowed, upper case",
            _insert_middle(english, _reflow(gsm8k[g2]["question"].upper(), 31)),
            "gsm8k",
            f"gsm8k:{g2}",
        ),
        Leak(
            "MATH problem re-typeset",
            _insert_middle(english, _retypeset(math[m_problem]["problem"])),
            "math",
            math[m_problem]["unique_id"],
        ),
        Leak(
            "MATH solution in $$..$$",
            _insert_middle(english, _display_math(math[m_solution]["solution"])),
            "math",
            math[m_solution]["unique_id"],
        ),
        Leak(
            "CMATH question in Chinese text, full-width digits",
            _insert_middle(chinese, _fullwidth_digits(cmath[c_item]["question"])),
            "cmath",
            f"cmath:{c_item}",
        ),
        Leak(
            "short Gaokao cloze item",
            _insert_middle(chinese, short_cloze),
            "gaokao_mathcloze",
            f"gaokao_mathcloze:{k_item}",
        ),
    ]
