"""The whole dedup stage on real texts: exact outcomes, audit trail, determinism across runners, skew."""
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import shutil
from itertools import combinations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.beam_utils import is_complete, read_json
from pipeline.dedup.components import connected_components
from pipeline.dedup.minhash import jaccard, shingle_set
from pipeline.dedup.pipeline import KEPT_SCHEMA, run
from pipeline.schema import DOCUMENT_SCHEMA

HEADER = "Home | Forum | Members | Calendar | Search | Log in\nPosted in Algebra by a guest user\n"


def make_row(url: str | None, text: str, fetch_time: str | None = "2024-03-01T10:00:00Z", **extra) -> dict:
    ident = hashlib.sha1(f"{url}\n{text}".encode()).hexdigest()
    row = {name: None for name in DOCUMENT_SCHEMA.names}
    row.update(id=ident, url=url, fetch_time=fetch_time, text=text, num_chars=len(text), warc_path="t.warc.gz",
               warc_offset=0, source_format="html", lang="en", lang_score=0.9, num_formulas=0)
    row.update(extra)
    return row


def write_rows(rows: list[dict], folder) -> str:
    os.makedirs(folder, exist_ok=True)
    half = len(rows) // 2  # two shards, so reading a folder of shards is exercised
    for i, part in enumerate((rows[:half], rows[half:])):
        pq.write_table(pa.Table.from_pylist(part, schema=DOCUMENT_SCHEMA), os.path.join(folder, f"in-{i}.parquet"))
    return str(folder)


def read_output(out) -> tuple[list[dict], list[dict]]:
    kept = [r for f in sorted(glob.glob(os.path.join(out, "data", "*.parquet"))) for r in pq.read_table(f).to_pylist()]
    removed = [r for f in sorted(glob.glob(os.path.join(out, "removed", "*.parquet"))) for r in pq.read_table(f).to_pylist()]
    return kept, removed


@pytest.fixture(scope="module")
def corpus(benchmark_dir, tmp_path_factory):
    """Real MATH texts with URL duplicates, a boilerplate near-duplicate, a chain, short/empty texts."""
    with gzip.open(benchmark_dir / "math" / "MATH_test.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [t for t in (json.loads(line) for line in fh)]
    texts = [t["problem"] + "\n\n" + t["solution"] for t in texts if len(t["solution"].split()) > 120]
    # base pages that are pairwise dissimilar (MATH itself has a few near-duplicate problems)
    chosen: list[tuple[str, set]] = []
    for t in texts:
        sh = shingle_set(t)
        if all(jaccard(sh, other) < 0.3 for _, other in chosen):
            chosen.append((t, sh))
        if len(chosen) == 32:
            break
    texts = [t for t, _ in chosen]
    rows = [make_row(f"https://math.example/q/{i}", t) for i, t in enumerate(texts[:30])]
    expect_removed: dict[str, tuple[str, str]] = {}  # removed id -> (kept id, reason)

    # URL duplicates of page 0: same page under equivalent URLs, fetched at other times
    older = make_row("HTTP://Math.Example:443/q/0/?utm_source=feed#answer", texts[0], "2023-01-01T00:00:00Z")
    older["url"] = "https://Math.Example:443/q/0/?utm_source=feed#answer"
    older["id"] = hashlib.sha1(f"{older['url']}\n{texts[0]}".encode()).hexdigest()
    undated = make_row("https://math.example/q/0?fbclid=1", texts[0] + " (edited)", None)
    newest = make_row("https://math.example/q/0#top", texts[0] + " Thanks!", "2025-06-01T00:00:00Z")
    rows += [older, undated, newest]
    for r in (rows[0], older, undated):
        expect_removed[r["id"]] = (newest["id"], "url")
    # a tie on fetch_time: the smaller id wins
    tie = make_row("https://math.example/q/1/", texts[1])
    winner, loser = sorted([rows[1], tie], key=lambda r: r["id"])
    expect_removed[loser["id"]] = (winner["id"], "url")
    rows.append(tie)

    # a boilerplate copy of page 2 on another site: near-duplicate, the longer copy is kept
    copy = make_row("https://mirror.example/q/2", HEADER + texts[2])
    assert jaccard(shingle_set(copy["text"]), shingle_set(texts[2])) > 0.8
    expect_removed[rows[2]["id"]] = (copy["id"], "near_dup")
    rows.append(copy)

    # a chain (A~B, B~C, A!~C): windows of ~8k words shifted by k, so a page is similar (>= 0.7)
    # to its neighbours and at most the next but one; one component that needs several star rounds
    words = (texts[30] + " " + texts[31]).split()  # not among the base pages
    m = 12
    k = len(words) // (m + 7)
    chain = [make_row(f"https://chain.example/{j}", " ".join(words[j * k: len(words) - (m - 1 - j) * k])) for j in range(m)]
    sets = [shingle_set(r["text"]) for r in chain]
    similar = [(i, j) for i, j in combinations(range(m), 2) if jaccard(sets[i], sets[j]) >= 0.7]
    assert len(set(connected_components(similar)[0].values())) == 1 and len(similar) < 2 * m
    assert all(j - i <= 2 for i, j in similar) and jaccard(sets[0], sets[-1]) < 0.3
    chain_kept = max(chain, key=lambda r: (len(r["text"]), [-ord(c) for c in r["id"]]))
    for r in chain:
        if r is not chain_kept:
            expect_removed[r["id"]] = (chain_kept["id"], "near_dup")
    rows += chain

    # empty and very short texts: an empty page is kept (nothing to compare), equal short texts are duplicates
    empty = make_row("https://short.example/empty", "")
    yes1, yes2 = make_row("https://short.example/a", "Yes."), make_row("https://short.example/b", "YES.")
    no = make_row("https://short.example/c", "No.")
    short_winner, short_loser = sorted([yes1, yes2], key=lambda r: r["id"])
    expect_removed[short_loser["id"]] = (short_winner["id"], "near_dup")
    rows += [empty, yes1, yes2, no]
    # no URL: never URL-deduplicated, still near-deduplicated
    nourl = make_row(None, texts[5])
    first, second = sorted([nourl["id"], rows[5]["id"]])  # same text and length: the smaller id is kept
    expect_removed[second] = (first, "near_dup")
    rows.append(nourl)
    # a row without id is rejected
    bad = make_row("https://bad.example/x", "no id here")
    bad["id"] = ""
    rows.append(bad)

    folder = write_rows(rows, tmp_path_factory.mktemp("dedup_in") / "shards")
    valid = [r for r in rows if r["id"]]
    expected_kept = sorted({r["id"] for r in valid} - set(expect_removed))
    return {"input": folder, "rows": valid, "expect_removed": expect_removed, "expected_kept": expected_kept,
            "newest": newest["id"], "chain_kept": chain_kept["id"], "copy": copy["id"]}


_KEPT_BY_RUNNER: dict[str, bytes] = {}


@pytest.mark.parametrize("exchange", ["shuffle", "files"])
def test_dedup_outcomes_on_every_runner(corpus, beam_runner, exchange, tmp_path):
    """Exact outcomes, byte-identical on every runner and with both exchanges (Beam shuffles,
    run files); on the in-process runner two unrolled star rounds are too few for the 12-page
    path: detected, and the job is rerun with more."""
    out = str(tmp_path / "out")
    in_process = "--direct_running_mode=multi_processing" not in beam_runner and "--runner=PortableRunner" not in beam_runner
    rounds = ["--cc_rounds", "2", "--cc_max_rounds", "8"] if in_process else ["--cc_rounds", "5"]
    summary = run(["--input", corpus["input"], "--output", out, "--num_shards", "2", "--exchange", exchange]
                  + rounds + beam_runner)
    assert summary["parameters"]["exchange"] == exchange
    assert not os.path.exists(os.path.join(out, "_exchange"))  # the run files are deleted on completion
    kept, removed = read_output(out)

    kept_ids = sorted(r["id"] for r in kept)
    assert kept_ids == corpus["expected_kept"]
    assert {r["id"]: (r["kept_id"], r["reason"]) for r in removed} == corpus["expect_removed"]
    # audit: every removal points to a kept page, every page leaves exactly once
    assert {r["kept_id"] for r in removed} <= set(kept_ids)
    assert len(kept) + len(removed) == len(corpus["rows"])
    # dup_count: how many input pages each kept page stands for
    dup = {r["id"]: r["dup_count"] for r in kept}
    assert dup[corpus["newest"]] == 4 and dup[corpus["chain_kept"]] == 12 and dup[corpus["copy"]] == 2
    assert sum(dup.values()) == len(corpus["rows"])
    assert pq.read_schema(glob.glob(os.path.join(out, "data", "*.parquet"))[0]).equals(KEPT_SCHEMA)

    assert is_complete(out) and read_json(os.path.join(out, "summary.json")) == summary
    counts = summary["counts"]
    assert counts["rejected"] == {"missing_id": 1} and counts["kept"] == len(kept)
    assert counts["removed"] == {"url": 4, "near_dup": sum(1 for v in corpus["expect_removed"].values() if v[1] == "near_dup")}
    assert counts["pages_without_shingles"] == 1 and summary["consistent"] and summary["components"]["converged"]
    assert sum(summary["cluster_size_histogram"].values()) == len(kept)
    if in_process and exchange == "shuffle":
        assert summary["components"]["rounds"] > 2  # rerun with more rounds
        marker = os.path.getmtime(os.path.join(out, "_SUCCESS"))  # a rerun on complete output does no work
        assert run(["--input", corpus["input"], "--output", out]) == summary
        assert os.path.getmtime(os.path.join(out, "_SUCCESS")) == marker
    assert os.path.getsize(os.path.join(out, "cluster_sizes.png")) > 1000

    # determinism: byte-identical sorted kept ids on every runner
    blob = "\n".join(kept_ids).encode()
    for other in _KEPT_BY_RUNNER.values():
        assert other == blob
    _KEPT_BY_RUNNER[" ".join(beam_runner) + " " + exchange] = blob


def test_skew_one_huge_cluster(tmp_path):
    """2,000 pages that differ only in a date: one LSH bucket per band and one component hold them all.

    (Bounded memory per group is shown on 50,000-member groups in ``test_dedup_components``.)"""
    body = ("Problem of the day. Let $f(x) = x^2 - 5x + 6$. Find all real roots of $f$ and explain each step. "
            "Factor the quadratic as $(x-2)(x-3)$, so the roots are $x = 2$ and $x = 3$. "
            "Check: $f(2) = 4 - 10 + 6 = 0$ and $f(3) = 9 - 15 + 6 = 0$, as expected of a root. ")
    n = 2_000
    rows = [make_row(f"https://daily.example/{i}", f"Posted {2000 + i // 365}-{i % 12 + 1:02d}-{i % 28 + 1:02d}. " + body)
            for i in range(n)]
    rows += [make_row("https://other.example/a", "A completely different page about geometry and circles " * 5)]
    folder = write_rows(rows, tmp_path / "in")
    out = str(tmp_path / "out")
    # fewer bands and neighbours than the default keep the test fast; the shapes of the groups are the same
    summary = run(["--input", folder, "--output", out, "--cc_rounds", "3", "--num_perm", "32", "--bands", "4",
                   "--rows", "8", "--neighbours", "1"])
    kept, removed = read_output(out)
    assert len(kept) == 2 and len(removed) == n - 1
    assert sorted(r["dup_count"] for r in kept) == [1, n]
    assert summary["cluster_size_histogram"] == {"1": 1, "1025-2048": 1}
    assert summary["components"]["converged"]


def test_bad_file_and_repeated_rows_are_accounted(corpus, tmp_path):
    """A file that is not Parquet is one reject and the other files are deduplicated; a row
    repeated verbatim in two files is two pages (one kept, one a URL duplicate)."""
    folder = tmp_path / "in"
    shutil.copytree(corpus["input"], folder)
    (folder / "broken.parquet").write_bytes(b"PAR1 this is not a parquet file")
    repeated = next(r for r in corpus["rows"] if r["id"] in corpus["expected_kept"])
    pq.write_table(pa.Table.from_pylist([repeated], schema=DOCUMENT_SCHEMA), folder / "again.parquet")
    out = str(tmp_path / "out")
    summary = run(["--input", str(folder), "--output", out, "--runner=FnApiRunner"])
    kept, removed = read_output(out)
    rejects = pq.read_table(glob.glob(os.path.join(out, "rejects", "*.parquet"))[0]).to_pylist()
    assert summary["counts"]["rejected"] == {"missing_id": 1, "unreadable_parquet": 1}
    assert [r["file"] for r in rejects if r["reason"] == "unreadable_parquet"] == [str(folder / "broken.parquet")]
    assert sorted(r["id"] for r in kept) == corpus["expected_kept"]
    assert len(kept) + len(removed) == len(corpus["rows"]) + 1  # the repeated row left as a URL duplicate
    assert [(r["kept_id"], r["reason"]) for r in removed if r["id"] == repeated["id"]] == [(repeated["id"], "url")]
    assert {r["id"]: r["dup_count"] for r in kept}[repeated["id"]] >= 2 and summary["consistent"]
