"""The two extraction tiers: fast text to score, and the precise text of the pages kept, read again
from the archives, identical to the single-tier extract stage's rows."""
from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.extract import refine
from pipeline.extract.fast_text import fast_main_text
from pipeline.extract.html_math import extract_main_text
from pipeline.extract.pipeline import run as run_extract
from pipeline.extract.warc_reader import PageRecord, read_archive, read_records_at
from pipeline.schema import DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND, schema_with

RUNNER = ["--runner=FnApiRunner"]
ROUNDS_SCHEMA = schema_with(DOCUMENT_SCHEMA, DUP_COUNT, MATH_SCORE, RECALL_ROUND)


# -- the fast tier ---------------------------------------------------------------------------------

def test_fast_tier_keeps_the_tex_of_scripts_katex_mathml_and_formula_images():
    html = """<html><head><title>Roots</title></head><body><article>
    <p>The roots of a quadratic are <script type="math/tex">x_{1,2}</script> given by
    <script type="math/tex; mode=display">x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}</script> in general.</p>
    <p>KaTeX writes <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>e</mi></mrow>
    <annotation encoding="application/x-tex">e^{i\\pi}+1=0</annotation></semantics></math></span>
    <span class="katex-html" aria-hidden="true">eiπ+1=0</span></span> with its glyphs beside the TeX.</p>
    <p>Wikipedia writes <span class="mwe-math-element"><span class="mwe-math-mathml-inline" style="display: none;">
    <math alttext="{\\displaystyle a^{2}+b^{2}}"><semantics><mrow><msup><mi>a</mi><mn>2</mn></msup></mrow>
    <annotation encoding="application/x-tex">{\\displaystyle a^{2}+b^{2}}</annotation></semantics></math></span>
    <img src="https://wikimedia.org/api/rest_v1/media/math/render/svg/abc" class="mwe-math-fallback-image-inline"
    alt="{\\displaystyle a^{2}+b^{2}}"></span> for the sum of squares, and a LaTeX image
    <img src="https://latex.codecogs.com/gif.latex?\\int_0^1 x\\,dx" alt="\\int_0^1 x\\,dx"> closes it.</p>
    <p>This paragraph makes the article long enough to count as the main content of the page for sure.</p>
    </article></body></html>"""
    out = fast_main_text(html)
    assert out.title == "Roots"
    for tex in ("$x_{1,2}$", "$$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$$", "$e^{i\\pi}+1=0$", "$a^{2}+b^{2}$",
                "$\\int_0^1 x\\,dx$"):
        assert tex in out.text, (tex, out.text)
    assert out.text.count("a^{2}+b^{2}") == 1 and "eiπ" not in out.text  # one copy of each formula
    assert out.num_formulas == 5


def test_fast_tier_leaves_prices_and_code_alone():
    html = ("<html><body><article><p>The lunch costs $5 and the dinner costs $6 at the small place downtown, "
            "which is cheap for the city.</p><pre>if x &lt; y: print(x)</pre></article></body></html>")
    out = fast_main_text(html)
    assert "$5 and the dinner costs $6" in out.text and "print(x)" in out.text
    assert fast_main_text("").text == "" and fast_main_text("<html><body>\x00\x00</body></html>").num_formulas == 0


def test_fast_tier_scores_the_math_of_the_shared_pages(shared_data):
    """On the real math pages whose formulas are markup that is cheap to read (MathJax scripts,
    KaTeX, MathML annotations, formula images), the fast text holds as many formulas as the precise
    extractor finds; on the non-math pages it finds almost none."""
    pages = [json.loads(line) for line in (shared_data / "html" / "pages.jsonl").open()]
    fast_total = precise_total = nonmath_formulas = 0
    for page in pages:
        html = (shared_data / page["file"]).read_text(errors="replace")
        if page["label"] == "math" and set(page["math_markers"]) & {"script_math_tex", "katex", "mathml", "mwe_math", "latex_img"}:
            fast_total += fast_main_text(html).num_formulas
            precise_total += extract_main_text(html).num_formulas
        elif page["label"] == "nonmath":
            nonmath_formulas += fast_main_text(html).num_formulas
    assert precise_total > 300 and fast_total >= 0.8 * precise_total, (fast_total, precise_total)
    assert nonmath_formulas <= 20


# -- reading records again by offset ---------------------------------------------------------------

def test_every_record_is_read_again_by_its_offset(shared_data, sample_dir):
    """Every page of the real archives (gzip members, plain WARC, ARC, WET, a whole-file gzip, a
    clipped record) comes back from ``warc_path`` + ``warc_offset`` as the record the full read gave."""
    paths = sorted(glob.glob(str(shared_data / "warc" / "*" / "*"))) + sorted(glob.glob(str(sample_dir / "warc" / "*")))
    total = 0
    for path in paths:
        pages = [item for item in read_archive(path) if isinstance(item, PageRecord)]
        again = list(read_records_at(path, [p.warc_offset for p in reversed(pages)]))
        assert again == sorted(pages, key=lambda p: p.warc_offset), path
        total += len(pages)
    assert total >= 250


def test_a_record_that_is_gone_is_a_refetch_failed_reject(sample_dir, tmp_path):
    path = sorted(glob.glob(str(sample_dir / "warc" / "*.warc.gz")))[0]
    first = next(p for p in read_archive(path) if isinstance(p, PageRecord))
    items = list(read_records_at(path, [first.warc_offset, first.warc_offset + 7]))
    assert items[0] == first
    assert [(i.kind, i.reason, i.offset) for i in items[1:]] == [("reject", "refetch_failed", first.warc_offset + 7)]
    missing = list(read_records_at(str(tmp_path / "gone.warc.gz"), [0, 10]))
    assert [(i.reason, i.offset) for i in missing] == [("refetch_failed", 0), ("refetch_failed", 10)]


# -- the refine stage: the precise rows of the recalled pages ----------------------------------------

def _rows(folder: Path, schema: pa.Schema) -> list[dict]:
    return pq.read_table(sorted((folder / "data").glob("*.parquet")), schema=schema).to_pylist()


@pytest.fixture(scope="module")
def tiers(tmp_path_factory, shared_data, sample_dir):
    """The extract stage on the bundled sample and the shared crawls, with each tier."""
    work = tmp_path_factory.mktemp("tiers")
    inputs = [str(sample_dir / "warc"), str(shared_data / "warc" / "commoncrawl"), str(shared_data / "warc" / "other_crawls")]
    argv = [a for i in inputs for a in ("--input", i)]
    out = {}
    for tier in ("fast", "precise"):
        run_extract(argv + ["--output", str(work / tier), "--tier", tier, "--num_shards", "1", *RUNNER])
        out[tier] = _rows(work / tier, DOCUMENT_SCHEMA)
    return work, out


def test_refined_rows_are_the_single_tier_rows(tiers):
    """Every fast-tier page, refined, is byte for byte the row the single-tier stage wrote for the
    same record (text, id, title, language, formula count), with the later stages' columns kept."""
    work, rows = tiers
    fast = [{**r, "dup_count": 1, "math_score": 0.5, "recall_round": 2} for r in rows["fast"]]
    pq.write_table(pa.Table.from_pylist(fast, schema=ROUNDS_SCHEMA), work / "recalled.parquet")
    summary = refine.run(["--input", str(work / "recalled.parquet"), "--output", str(work / "refined"), *RUNNER])
    refined = {(r["warc_path"], r["warc_offset"]): r for r in _rows(work / "refined", ROUNDS_SCHEMA)}
    precise = {(r["warc_path"], r["warc_offset"]): r for r in rows["precise"]}

    assert summary["accounted"] and summary["rows_in"] == len(fast) >= 200
    missing = set(precise) - set(refined)
    assert len(missing) == summary["rows_in"] - summary["rows_out"] == sum(summary["rejected"].values())
    assert len(missing) <= 0.02 * len(precise)  # pages the fast tier found empty are not refined
    for key, row in refined.items():
        assert {k: row[k] for k in DOCUMENT_SCHEMA.names} == precise[key], key
        assert (row["dup_count"], row["math_score"], row["recall_round"]) == (1, 0.5, 2)
    html = sum(1 for r in fast if r["source_format"] == "html")
    assert summary["refined"] == html and summary["passed_through"] == len(fast) - html
    assert summary["text_changed"] > 0.5 * html  # the tiers do differ: the rows match because of refine


def test_precise_tier_rows_pass_through_refine(tiers):
    work, rows = tiers
    pq.write_table(pa.Table.from_pylist(rows["precise"], schema=DOCUMENT_SCHEMA), work / "precise.parquet")
    summary = refine.run(["--input", str(work / "precise.parquet"), "--output", str(work / "same"), "--tier", "precise",
                          *RUNNER])
    assert summary["passed_through"] == summary["rows_out"] == len(rows["precise"]) and summary["refetched"] == 0
    key = lambda r: (r["warc_path"], r["warc_offset"])
    assert sorted(_rows(work / "same", DOCUMENT_SCHEMA), key=key) == sorted(rows["precise"], key=key)


def test_a_recalled_page_whose_archive_is_gone_is_a_counted_reject(tiers, tmp_path):
    work, rows = tiers
    keep, lost = rows["fast"][0], {**rows["fast"][1], "warc_path": str(tmp_path / "moved.warc.gz")}
    pq.write_table(pa.Table.from_pylist([keep, lost], schema=DOCUMENT_SCHEMA), tmp_path / "in.parquet")
    summary = refine.run(["--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out"), *RUNNER])
    assert summary["rows_out"] == 1 and summary["rejected"] == {"refetch_failed": 1} and summary["accounted"]
    rejects = pq.read_table(sorted((tmp_path / "out" / "rejects").glob("*.parquet"))).to_pylist()
    assert [(r["reason"], r["url"] is None or r["url"] == lost["url"]) for r in rejects] == [("refetch_failed", True)]
