"""Domain and path discovery on a synthetic pool, and the harvest of the pages the classifier missed.

The pool: ``mathsite.org`` holds 20 lesson pages under ``/lessons/`` and 20 news pages under
``/news/``; 30 other domains hold 1-3 pages each. A round recalled 12 of the 20 lessons, one news
page and two noise pages. Expected: mathsite.org is a math domain (13/40 recalled: the 95% Wilson
lower bound, 0.20, is above 10%), ``/lessons/`` is the accepted prefix (12/20 recalled, lower
bound 0.39 >= 0.3; neither ``/`` at 0.20 nor ``/news/`` at 0.009 qualifies), and the 8 lessons
that were missed become the next round's positives (7 new: an earlier round already added one),
while the negative sample avoids the accepted path, the pages recalled before and the pages
with formulas.
"""
import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.rounds import discovery
from pipeline.rounds.discovery import PathMatcher, RecallStats, accepted_paths, path_prefixes, paths_tsv, propose_paths
from pipeline.rounds.transforms import SAMPLE_SCHEMA, build_prepare_pipeline
from pipeline.schema import DOCUMENT_SCHEMA


@pytest.fixture(scope="module")
def pool(seed_dir, tmp_path_factory):
    with gzip.open(seed_dir / "math_seed.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    pages = []
    for i in range(20):
        pages.append(("mathsite.org", f"https://mathsite.org/lessons/unit-{i % 4}/lesson-{i}.html"))
        pages.append(("mathsite.org", f"https://www.mathsite.org/news/{2020 + i % 3}/post-{i}"))
    for d in range(30):
        for j in range(1 + d % 3):
            pages.append((f"noise{d}.com", f"http://noise{d}.com/p/{j}"))
    rows = [{"id": f"page-{n:03d}", "url": url, "domain": domain, "text": texts[n], "num_formulas": int(n % 17 == 5)}
            for n, (domain, url) in enumerate(pages)]
    lessons = [r for r in rows if "/lessons/" in r["url"]]
    news = [r for r in rows if "/news/" in r["url"]]
    recalled = {r["id"] for r in lessons[:12]} | {news[0]["id"], "page-080", "page-090"}
    folder = tmp_path_factory.mktemp("synthetic_pool")
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in DOCUMENT_SCHEMA.names} for r in rows],
                                        schema=DOCUMENT_SCHEMA), folder / "part-0.parquet")
    previous = tmp_path_factory.mktemp("previous_recalled")
    pq.write_table(pa.table({"id": sorted(recalled)}), previous / "part-0.parquet")
    return {"rows": rows, "recalled": recalled, "lessons": lessons, "pool": str(folder / "*.parquet"),
            "previous": str(previous / "*.parquet")}


def _stats(rows, recalled, max_depth=2):
    domains, paths = {}, {}
    for r in rows:
        page = RecallStats.of_page(r["id"] in recalled, len(r["text"].split())).as_tuple()
        domains[r["domain"]] = discovery.add_stats(domains.get(r["domain"], (0, 0, 0, 0)), page)
        for prefix in path_prefixes(r["url"], max_depth):
            key = (r["domain"], prefix)
            paths[key] = discovery.add_stats(paths.get(key, (0, 0, 0, 0)), page)
    return ({d: RecallStats(*v) for d, v in domains.items()}, {k: RecallStats(*v) for k, v in paths.items()})


def test_path_prefixes_are_directories():
    assert path_prefixes("https://mathoverflow.net/questions/123/title") == ["/", "/questions/", "/questions/123/"]
    assert path_prefixes("https://mathoverflow.net/questions/123/title", 1) == ["/", "/questions/"]
    assert path_prefixes("https://a.org") == ["/"] and path_prefixes("https://a.org/x.html") == ["/"]
    assert path_prefixes(None) == [] and path_prefixes("http://[bad") == []


def test_math_domain_and_path_are_found(pool):
    domains, paths = _stats(pool["rows"], pool["recalled"])
    math = {d for d, s in domains.items() if discovery.is_math_domain(s)}
    assert "mathsite.org" in math and domains["mathsite.org"].share == pytest.approx(13 / 40)
    assert domains["mathsite.org"].share_lower_bound == pytest.approx(0.2008, abs=1e-3)
    # One recalled page of one, or 3 of 20, is no evidence; 3 of 3 is.
    assert not discovery.is_math_domain(RecallStats(pages=1, recalled=1))
    assert not discovery.is_math_domain(RecallStats(pages=20, recalled=3))
    assert discovery.is_math_domain(RecallStats(pages=3, recalled=3))
    assert not {d for d in math if d.startswith("noise")}  # 1-3 page domains with one recalled page
    in_math = {k: v for k, v in paths.items() if k[0] in math}
    proposals = propose_paths(in_math, min_share=0.3, min_pages=5)
    accepted = [(p.domain, p.prefix) for p in proposals if p.accept]
    assert accepted == [("mathsite.org", "/lessons/")]
    rejected = {(p.domain, p.prefix): p.stats.share for p in proposals if not p.accept}
    assert rejected[("mathsite.org", "/")] == pytest.approx(13 / 40)
    assert rejected[("mathsite.org", "/news/")] == pytest.approx(1 / 20)
    # Sub-prefixes of an accepted one are listed but not accepted twice.
    assert ("mathsite.org", "/lessons/unit-0/") in rejected
    text = paths_tsv(proposals)
    assert accepted_paths(text) == accepted


def test_edited_paths_file_is_read_as_is():
    edited = ("# comment\naccept\tdomain\tpath_prefix\tpages\n1\tmathsite.org\t/lessons/\t20\n0\tmathsite.org\t/news/\t20\n"
              "1\tMathOverflow.net\tquestions/\n")
    assert accepted_paths(edited) == [("mathoverflow.net", "/questions/"), ("mathsite.org", "/lessons/")]
    with pytest.raises(ValueError, match="row 2"):
        accepted_paths("accept\tdomain\tpath_prefix\nmaybe\ta.org\t/\n")
    with pytest.raises(ValueError, match="columns"):
        accepted_paths("domain\tpath_prefix\na.org\t/\n")
    matcher = PathMatcher([("mathsite.org", "/lessons/")])
    assert matcher.matches("mathsite.org", "https://mathsite.org/lessons/x")
    assert not matcher.matches("mathsite.org", "https://mathsite.org/lessonsx/y")
    assert not matcher.matches("other.org", "https://other.org/lessons/x") and not PathMatcher([])


def test_missed_pages_become_positives_and_negatives_avoid_them(pool, tmp_path):
    accepted = [("mathsite.org", "/lessons/")]
    prior = tmp_path / "prior"
    prior.mkdir()
    already = pool["lessons"][12]  # a missed lesson that an earlier round already added
    pq.write_table(pa.Table.from_pylist([{k: already[k] for k in SAMPLE_SCHEMA.names}], schema=SAMPLE_SCHEMA),
                   prior / "part-0.parquet")
    with beam.Pipeline("FnApiRunner") as p:
        build_prepare_pipeline(p, pool_glob=pool["pool"], out_dir=str(tmp_path / "round"), accepted=accepted,
                               previous_recalled_glob=pool["previous"], prior_positive_globs=[str(prior / "*.parquet")],
                               negatives=25, salt=0, markup_positives=1000)
    positives = pq.read_table(sorted((tmp_path / "round" / "positives").glob("*.parquet"))).to_pylist()
    missed = {r["id"] for r in pool["lessons"][13:]}
    assert {r["id"] for r in positives} == missed and len(positives) == 7
    assert all(r["text"] and r["url"] for r in positives)
    negatives = pq.read_table(sorted((tmp_path / "round" / "negatives").glob("*.parquet"))).to_pylist()
    assert len(negatives) == 25 and not {r["id"] for r in negatives} & {r["id"] for r in pool["lessons"]}
    # Clean negatives: never a page recalled before, never a page with formulas.
    with_formulas = {r["id"] for r in pool["rows"] if r["num_formulas"]}
    overlap = {r["id"] for r in negatives} & (pool["recalled"] | with_formulas)
    assert not overlap, overlap
    markup = pq.read_table(sorted((tmp_path / "round" / "markup").glob("*.parquet"))).to_pylist()
    assert {r["id"] for r in markup} == with_formulas
    stats = json.loads((tmp_path / "round" / "tables" / "prepare_stats.json").read_text())
    assert stats["new_positives"][0] == 7 and stats["under_accepted_paths"][0] == 20
    assert stats["negatives"][0] == 25 and stats["pool_pages"][0] == len(pool["rows"])
    outside = [r for r in pool["rows"] if "/lessons/" not in r["url"]]
    assert stats["negatives_excluded:markup"][0] == sum(1 for r in outside if r["num_formulas"])
    assert stats["negatives_excluded:recalled_before"][0] == sum(
        1 for r in outside if r["id"] in pool["recalled"] and not r["num_formulas"])
    assert stats["markup_pages"][0] == len(with_formulas)
