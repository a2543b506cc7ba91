"""Run files and the file exchange: sorted spills, cascaded merges, streamed candidates, union-find,
and the whole dedup stage giving the same output with tiny buffers (many spills, cascades)."""
from __future__ import annotations

import os
import random

import pytest

from pipeline.dedup import runs
from pipeline.dedup.components import connected_components
from pipeline.dedup.file_exchange import component_roots, partitions_for
from pipeline.dedup.runs import PartitionedRunWriter, list_runs, merge_runs, read_run, write_run
from pipeline.dedup.verify import bucket_candidate_edges

from test_dedup_pipeline import make_row, read_output, write_rows


def test_run_round_trip_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_BYTES", 200)  # a chunk every ~2 records
    records = [(f"node-{i:05d}", bytes([i % 256]) * 30) for i in range(1000)]
    path = str(tmp_path / "a" / "r.run")
    assert write_run(path, records) == 1000
    assert list(read_run(path)) == records
    assert os.listdir(tmp_path / "a") == ["r.run"]  # the temporary name is gone


def test_truncated_run_is_an_error_not_silent_loss(tmp_path):
    path = str(tmp_path / "r.run")
    write_run(path, [("a", 1), ("b", 2)])
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-3])
    with pytest.raises(OSError, match="truncated"):
        list(read_run(path))


def test_writer_spills_sorted_runs_per_partition_and_merge_restores_the_order(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "FAN_IN", 3)  # forces a cascade of intermediate merges
    rng = random.Random(7)
    records = [(f"{rng.randrange(10**6):07d}", i) for i in range(3000)]
    writer = PartitionedRunWriter(lambda p: str(tmp_path / f"p{p}"), "w", buffer_bytes=64 * 100)
    for r in records:
        writer.add(runs.partition_of(r[0], 4), r)
    assert writer.close() == 3000
    total = []
    for p in range(4):
        paths = list_runs(str(tmp_path / f"p{p}"))
        assert len(paths) > runs.FAN_IN  # many spills: each run sorted, the merge cascades
        for path in paths:
            got = list(read_run(path))
            assert got == sorted(got)
        merged = list(merge_runs(paths, str(tmp_path / "scratch")))
        assert merged == sorted(r for r in records if runs.partition_of(r[0], 4) == p)
        total += merged
    assert sorted(total) == sorted(records)
    assert not list_runs(str(tmp_path / "scratch"))  # intermediate runs deleted
    assert list_runs(str(tmp_path / "never-written")) == []


def test_streamed_bucket_candidates_equal_the_reference():
    """The band step's rule (members arrive smallest first; each links to the first k) gives
    exactly ``verify.bucket_candidate_edges``."""
    rng = random.Random(3)
    for k in (1, 3):
        members = sorted({f"{rng.randrange(10**9):010d}" for _ in range(50)})
        streamed, smallest = [], []
        for v in members:
            streamed += [(s, v) for s in smallest]
            if len(smallest) < k:
                smallest.append(v)
        assert sorted(streamed) == sorted(bucket_candidate_edges(members, k))


def test_union_find_roots_are_each_components_smallest_node():
    rng = random.Random(11)
    edges = [(f"n{rng.randrange(300):03d}", f"n{rng.randrange(300):03d}") for _ in range(260)]
    edges = [(a, b) for a, b in edges if a != b]
    roots = component_roots(edges)
    reference, _ = connected_components(edges)
    assert roots == {n: reference[n] for n in roots}
    assert all(root == min(n for n in roots if roots[n] == root) for root in roots.values())
    assert component_roots([("b", "c"), ("a", "c"), ("d", "e")]) == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "d"}


def test_partitions_follow_the_files_within_bounds():
    assert [partitions_for(n) for n in (0, 1, 7, 64, 90_000)] == [1, 1, 7, 64, 64]


def test_dedup_stage_with_tiny_buffers_matches_the_shuffle(benchmark_dir, tmp_path, monkeypatch):
    """Real MATH texts with near-duplicates: with 4 kB spill buffers, 1 kB chunks and a fan-in
    of 4 (hundreds of runs, cascaded merges), the file exchange keeps and removes exactly
    what the shuffle exchange does."""
    import gzip
    import json

    from pipeline.dedup.pipeline import run
    with gzip.open(benchmark_dir / "math" / "MATH_test.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line) for line in fh][:120]
    texts = [t["problem"] + "\n\n" + t["solution"] for t in texts if len(t["solution"].split()) > 40]
    rows = []
    for i, t in enumerate(texts):
        rows.append(make_row(f"https://a.example/{i}", t))
        if i % 3 == 0:  # a near-duplicate copy on a mirror, and a URL duplicate
            rows.append(make_row(f"https://mirror.example/{i}", "Mirror header. " + t))
            rows.append(make_row(f"https://a.example/{i}?utm_source=x", t + " !", "2025-01-01T00:00:00Z"))
    folder = write_rows(rows, tmp_path / "in")
    outs = {}
    for exchange in ("shuffle", "files"):
        if exchange == "files":
            monkeypatch.setattr(runs, "BUFFER_BYTES", 4096)
            monkeypatch.setattr(runs, "CHUNK_BYTES", 1024)
            monkeypatch.setattr(runs, "FAN_IN", 4)
            real_write, written = runs.write_run, []
            monkeypatch.setattr(runs, "write_run", lambda path, records: written.append(path) or real_write(path, records))
        out = str(tmp_path / exchange)
        summary = run(["--input", folder, "--output", out, "--exchange", exchange, "--runner=FnApiRunner"])
        kept, removed = read_output(out)
        outs[exchange] = (sorted((r["id"], r["dup_count"]) for r in kept),
                          sorted((r["id"], r["kept_id"], r["reason"]) for r in removed),
                          summary["counts"], summary["lsh"])
    assert outs["files"] == outs["shuffle"]
    assert len(written) > 100 and any("cascade-" in p for p in written)  # many spills, cascaded merges
    counts = outs["files"][2]
    assert counts["removed"]["near_dup"] >= len(texts) // 3 - 1 and counts["removed"]["url"] >= len(texts) // 3 - 1
