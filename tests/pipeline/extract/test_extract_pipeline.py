"""The extract stage end to end on Beam: real archives, hostile inputs, three runners, a Dataflow build."""
from __future__ import annotations

import collections
import hashlib
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from extract_warc_factory import count_html_200, deeply_nested_page, gzip_bomb, html_page, http_response, write_warc

from pipeline.beam_utils import is_complete, last_result
from pipeline.extract.pipeline import make_summary, parse_args, run
from pipeline.extract.transforms import ExtractConfig
from pipeline.schema import DOCUMENT_SCHEMA, REJECT_SCHEMA

# The stage's cost is the extractor, which runs in a child process per worker thread: two threads
# keep both cores busy, and --reshuffle_pages spreads the pages of the one large sample file.
PARALLEL = ("--direct_running_mode=multi_threading", "--direct_num_workers=2", "--reshuffle_pages")


def run_stage(inputs: list, output: Path, *extra: str) -> dict:
    argv = [a for i in inputs for a in ("--input", str(i))] + ["--output", str(output), *extra]
    return run(argv)


def read_output(output: Path) -> tuple[list[dict], list[dict]]:
    docs = pq.read_table(sorted((output / "data").glob("part-*.parquet")), schema=DOCUMENT_SCHEMA).to_pylist()
    rejects = pq.read_table(sorted((output / "rejects").glob("part-*.parquet")), schema=REJECT_SCHEMA).to_pylist()
    return docs, rejects


def check_rows(rows: list[dict]) -> None:
    for row in rows:
        assert row["id"] == hashlib.sha1(f"{row['url'] or ''}\n{row['text']}".encode()).hexdigest()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["fetch_time"]), row["fetch_time"]
        assert row["text"].strip() and row["num_chars"] == len(row["text"])
        assert row["warc_offset"] >= 0 and row["source_format"] in ("html", "text")
        assert row["domain"] and not row["domain"].startswith("www.")
        assert 0.0 <= row["lang_score"] <= 1.0


# -- the bundled sample -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, sample_dir):
    out = tmp_path_factory.mktemp("sample") / "extract"
    summary = run_stage([sample_dir / "warc"], out, *PARALLEL)
    return out, summary, *read_output(out)


def test_sample_yields_chinese_and_english_pages(sample_run, sample_dir):
    out, summary, docs, rejects = sample_run
    expected = sum(count_html_200(p) for p in (sample_dir / "warc").iterdir())
    assert summary["pages_read"] == expected
    assert summary["accounted"] and summary["pages_kept"] == len(docs)
    assert summary["pages_rejected"] == len([r for r in rejects if r["reason"] != "archive_error"])
    langs = collections.Counter(d["lang"] for d in docs)
    assert langs["en"] >= 30 and langs["zh"] >= 8, langs
    zh = [d for d in docs if d["lang"] == "zh"]
    assert all(re.search(r"[\u4e00-\u9fff]", d["text"]) for d in zh)
    assert any(d["num_formulas"] > 0 and "$" in d["text"] for d in docs)  # the labelled math pages
    assert {d["source_format"] for d in docs} == {"html", "text"}  # WARC responses and the WET record
    check_rows(docs)
    assert is_complete(str(out)) and (out / "summary.json").exists() and (out / "outcomes.png").stat().st_size > 0


def test_complete_output_is_not_recomputed(sample_run, sample_dir):
    out, summary, _, _ = sample_run
    again = run_stage([sample_dir / "warc" / "no-such-file.warc.gz"], out)  # would fail if it ran
    assert again == summary


# -- every shared archive ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, shared_data, sample_dir, sample_run):
    """One run over every shared archive, except those the sample run already read (byte-identical
    copies bundled in data/sample): their rows and rejects are taken from the sample run."""
    bundled = {p.name: p.read_bytes() for p in (sample_dir / "warc").iterdir()}
    warc = shared_data / "warc"
    files = [p for folder in ("commoncrawl", "other_crawls", "edge_cases") for p in sorted((warc / folder).iterdir())]
    todo = [p for p in files if bundled.get(p.name) != p.read_bytes()]
    out = tmp_path_factory.mktemp("shared") / "extract"
    summary = run_stage(todo, out, *PARALLEL)
    docs, rejects = read_output(out)
    _, _, sample_docs, sample_rejects = sample_run
    reused = {p.name for p in files} - {p.name for p in todo}
    docs += [d for d in sample_docs if Path(d["warc_path"]).name in reused]
    rejects += [r for r in sample_rejects if Path(r["file"]).name in reused]
    return summary, docs, rejects


def by_file(items: list[dict], key: str) -> collections.Counter:
    return collections.Counter(Path(i[key]).name for i in items)


def test_every_html_response_is_read(shared_run, shared_data):
    summary, docs, rejects = shared_run
    assert summary["accounted"]
    kept = by_file(docs, "warc_path")
    page_rejects = by_file([r for r in rejects if r["reason"] not in ("archive_error", "file_unreadable")], "file")
    exact = by_file([r for r in rejects if r["reason"] == "exact_duplicate"], "file")
    total_html = 0
    for folder in ("commoncrawl", "other_crawls"):
        for path in sorted((shared_data / "warc" / folder).iterdir()):
            expected = count_html_200(path)
            total_html += expected
            assert kept[path.name] + page_rejects[path.name] == expected, path.name
            # real crawls: at most one page without text; a page whose payload an earlier record has is counted apart
            assert kept[path.name] + exact[path.name] >= expected - 1, path.name
    assert total_html == 18 + 1 + 22 + 15 + 94 + 2  # HTML responses + the WET record, by SOURCES.md's files
    assert summary["rejected"].get("exact_duplicate", 0) == sum(exact.values())
    check_rows(docs)


def test_summary_counts_formulas_by_source(shared_run):
    summary, docs, _ = shared_run
    sources = summary["formula_sources"]
    # every formula of the kept rows is counted once, under the mechanism or delimiter that gave it
    assert sum(sources.values()) == summary["formulas"] == sum(d["num_formulas"] for d in docs)
    assert all(n > 0 for n in sources.values())


def test_summary_counts_pages_that_load_a_math_renderer(sample_run):
    _, summary, docs, _ = sample_run
    # the bundled sample holds MathJax forum threads and academic homepages that load MathJax
    assert summary["pages_with_math_renderer"] == sum(d["math_renderer"] for d in docs) > 0
    assert not any(d["math_renderer"] for d in docs if d["source_format"] == "text")
    assert any(d["math_renderer"] and not d["num_formulas"] for d in docs)


def test_rows_trace_back_to_their_record(shared_run):
    import gzip

    from warcio.archiveiterator import ArchiveIterator

    _, docs, _ = shared_run
    for row in docs:
        path = Path(row["warc_path"])
        # A whole-file gzip has no per-record members: its offsets are in the decompressed stream.
        opener = gzip.open if path.name == "warcio__example-bad-non-chunked.warc.gz" else open
        with opener(path, "rb") as fh:
            fh.seek(row["warc_offset"])
            record = next(iter(ArchiveIterator(fh, arc2warc=True)))
            assert record.rec_headers.get_header("WARC-Target-URI").strip("<>") == row["url"]


def test_edge_cases_lose_only_the_broken_records(shared_run):
    summary, docs, rejects = shared_run
    kept = by_file(docs, "warc_path")
    # Several of these archives hold the same example.com page: one copy is extracted, the others
    # are read as well and counted as exact duplicates.
    kept.update(by_file([r for r in rejects if r["reason"] == "exact_duplicate"], "file"))
    for name in ("resiliparse__clipped.warc.gz", "warcio__example-bad-non-chunked.warc.gz",
                 "warcio__example-iana.org-chunked.warc", "warcio__example-trunc.warc", "warcio__example.arc.gz",
                 "warcio__example.warc.gz"):
        assert kept[name] == 1, name
    wrong = sorted((r["offset"], r["reason"]) for r in rejects if Path(r["file"]).name.startswith("warcio__example-wr"))
    assert wrong == [(0, "empty_payload"), (516, "archive_error")]
    assert kept["warcio__example-wrong-chunks.warc.gz"] == 0
    assert all(r["reason"] and r["detail"] for r in rejects)
    assert summary["file_errors"] == {"archive_error": 1}
    assert summary["skipped"]["whole_file_gzip"] == 1 and summary["pages_truncated"] == 1


# -- hostile inputs built here ------------------------------------------------------------------------

@pytest.mark.parametrize("tier", ["precise", "fast"])
def test_pathological_pages_become_counted_rejects(tmp_path, tier):
    slow = b"<html><body>" + b"<p>word word word</p>" * 60_000 + b"</body></html>"  # ~1.3 MB of paragraphs
    good = html_page("Quadratic equations", ["The roots of $ax^2+bx+c=0$ are given by the quadratic formula."] * 3)
    path = write_warc(tmp_path / "hostile.warc.gz", [
        ("http://bomb.example/", *http_response(gzip_bomb(64 << 20), extra_headers=[("Content-Encoding", "gzip")])),
        ("http://deep.example/", *http_response(deeply_nested_page(5000))),
        ("http://huge.example/", *http_response(b"<html><body>" + b"<p>big</p>" * 250_000 + b"</body></html>")),
        ("http://binary.example/", *http_response(b"\x89PNG\r\n\x1a\n" + bytes(4096))),
        ("http://empty.example/", *http_response(b"<html><body><script>var a = 1;</script></body></html>")),
        ("http://slow.example/", *http_response(slow)),
        ("http://good.example/", *http_response(good)),
    ])
    out = tmp_path / "out"
    summary = run_stage([path], out, "--max_payload_bytes", "2000000", "--extract_timeout_s", "1", "--tier", tier)
    docs, rejects = read_output(out)
    # The precise extractor stops at libxml2's nesting limit and needs more than 1 s for the slow
    # page; the fast tier (lexbor) reads both, in milliseconds.
    extracted = {"precise": [], "fast": ["http://deep.example/", "http://slow.example/"]}[tier]
    assert sorted(d["url"] for d in docs) == sorted(extracted + ["http://good.example/"])
    good_row = next(d for d in docs if d["url"] == "http://good.example/")
    assert "$ax^2+bx+c=0$" in good_row["text"] or good_row["num_formulas"] >= 1
    expected = {("http://binary.example/", "binary_payload"), ("http://bomb.example/", "content_encoding_bomb"),
                ("http://empty.example/", "empty_text"), ("http://huge.example/", "payload_too_large")}
    if tier == "precise":
        expected |= {("http://deep.example/", "html_too_deep"), ("http://slow.example/", "extract_timeout")}
    assert sorted((r["url"], r["reason"]) for r in rejects) == sorted(expected)
    assert summary["rejected"] == dict(sorted(__import__("collections").Counter(r for _, r in expected).items()))
    assert summary["pages_read"] == 7 and summary["pages_kept"] == len(docs) and summary["accounted"]
    if tier == "precise":
        assert summary["counters"]["extract:rejected:extract_timeout"] == 1


# -- the same results on every runner -------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory, sample_dir) -> list[Path]:
    folder = tmp_path_factory.mktemp("small")
    built = write_warc(folder / "built.warc.gz", [
        ("http://zh.example/", *http_response("<html><body><p>二次方程的求根公式是数学中最常用的公式之一，"
                                              "我们先来看判别式。</p></body></html>".encode("gbk"),
                                              content_type="text/html; charset=gbk")),
        ("http://png.example/", *http_response(b"\x89PNG\r\n\x1a\n" + bytes(512))),
    ])
    return [sample_dir / "warc" / "whirlwind__whirlwind.warc.gz", sample_dir / "warc" / "whirlwind__whirlwind.warc.wet.gz",
            built]


def test_same_results_on_every_runner(beam_runner, small_inputs, tmp_path):
    out = tmp_path / "out"
    summary = run_stage(small_inputs, out, *beam_runner)
    docs, rejects = read_output(out)
    got = sorted((Path(d["warc_path"]).name, d["warc_offset"], d["url"], d["lang"], d["num_chars"], d["id"])
                 for d in docs)
    assert [(g[0], g[2]) for g in got] == [
        ("built.warc.gz", "http://zh.example/"),
        ("whirlwind__whirlwind.warc.gz", "https://an.wikipedia.org/wiki/Escopete"),
        ("whirlwind__whirlwind.warc.wet.gz", "https://an.wikipedia.org/wiki/Escopete"),
    ]
    assert got[0][3] == "zh"  # GBK-encoded Chinese, decoded by the declared charset
    assert [(Path(r["file"]).name, r["url"], r["reason"]) for r in rejects] == [
        ("built.warc.gz", "http://png.example/", "binary_payload")]
    assert (summary["files"], summary["records_read"], summary["pages_read"], summary["pages_kept"]) == (3, 8, 4, 3)
    # Identical rows (ids hash the text) on all runners: compare with the first runner's result.
    reference = test_same_results_on_every_runner.__dict__.setdefault("reference", got)
    assert got == reference


# -- Dataflow, built offline -------------------------------------------------------------------------------

def test_dataflow_job_builds_offline():
    summary = run([
        "--input", "gs://commoncrawl-bucket/crawl-data/CC-MAIN-2024-10/segments/*/warc/*.warc.gz",
        "--output", "gs://corpus-bucket/extract", "--num_shards", "500",
        "--runner=DataflowRunner", "--dry_run=True", "--no_auth", "--project=test-project",
        "--region=us-central1", "--temp_location=gs://test-bucket/tmp",
    ])
    assert summary["dry_run"] and summary["num_shards"] == 500
    job = last_result().job
    names = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    for step in ("InputPatterns", "MatchFiles", "SpreadFiles", "ReadRecords", "Decode", "ExtractMainText",
                 "IdentifyLanguage", "ToRows", "CollectRejects"):
        assert f"ExtractText/{step}" in names, step
    assert any(n.startswith("WriteDocuments/") for n in names) and any(n.startswith("WriteRejects/") for n in names)
    assert job.google_cloud_options.project == "test-project" and job.google_cloud_options.region == "us-central1"


# -- configuration and summary ----------------------------------------------------------------------------

def test_config_from_yaml_and_command_line(tmp_path):
    cfg = tmp_path / "extract.yaml"
    cfg.write_text("extract_timeout_s: 5\nmax_payload_bytes: 1000000\nnum_shards: 7\n")
    args, beam_args, config = parse_args(["--input", "x", "--output", "y", "--config", str(cfg),
                                          "--extract_timeout_s", "9", "--runner=FnApiRunner"])
    assert config == ExtractConfig(extract_timeout_s=9.0, max_payload_bytes=1_000_000)
    assert args.num_shards == 7 and beam_args == ["--runner=FnApiRunner"]
    cfg.write_text("extract_timeout: 5\n")
    with pytest.raises(SystemExit, match="unknown keys"):
        parse_args(["--input", "x", "--output", "y", "--config", str(cfg)])
    with pytest.raises(ValueError):
        ExtractConfig(extract_isolation="fork")


def test_summary_accounting_by_hand():
    counts = {"extract:files": 2, "extract:file_bytes": 5_000_000, "extract:records": 40, "extract:pages_read": 12,
              "extract:pages_kept": 9, "extract:rejected:binary_payload": 2, "extract:rejected:empty_text": 1,
              "extract:rejected:archive_error": 1, "extract:skipped:record_type_request": 12}
    s = make_summary(counts, inputs=["a"], output="o", config=ExtractConfig(), wall_time_s=2.0, runner="FnApiRunner")
    assert s["pages_rejected"] == 3 and s["accounted"]
    assert s["rejected"] == {"binary_payload": 2, "empty_text": 1} and s["file_errors"] == {"archive_error": 1}
    assert s["pages_per_s"] == 6.0 and s["mb_per_s"] == 2.5
    counts["extract:pages_kept"] = 8
    assert not make_summary(counts, inputs=["a"], output="o", config=ExtractConfig(), wall_time_s=2.0,
                            runner="x")["accounted"]


# -- exact duplicates before extraction ----------------------------------------------------------------

def test_identical_payloads_are_extracted_once(tmp_path):
    same = html_page("Vieta's formulas", ["For $x^2+px+q=0$ the roots satisfy $x_1+x_2=-p$ and $x_1x_2=q$."] * 3)
    other = html_page("Pythagoras", ["In a right triangle $a^2+b^2=c^2$, where $c$ is the hypotenuse."] * 3)
    first = write_warc(tmp_path / "a.warc.gz", [("http://one.example/vieta", *http_response(same)),
                                                 ("http://two.example/vieta", *http_response(same)),
                                                 ("http://one.example/pythagoras", *http_response(other))])
    second = write_warc(tmp_path / "b.warc.gz", [("http://mirror.example/vieta", *http_response(same))])
    summary = run_stage([first, second], tmp_path / "out")
    docs, rejects = read_output(tmp_path / "out")
    # One page per payload: the record at the smallest (file, offset) represents its copies.
    assert sorted(d["url"] for d in docs) == ["http://one.example/pythagoras", "http://one.example/vieta"]
    assert sorted((r["url"], r["reason"]) for r in rejects) == [("http://mirror.example/vieta", "exact_duplicate"),
                                                                ("http://two.example/vieta", "exact_duplicate")]
    assert summary["rejected"] == {"exact_duplicate": 2} and summary["pages_read"] == 4 and summary["accounted"]
    kept_all = run_stage([first, second], tmp_path / "all", "--no-exact_dedup")
    assert kept_all["pages_kept"] == 4 and kept_all["rejected"] == {}
