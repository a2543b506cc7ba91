"""The whole chain (``python -m pipeline.run``) on the bundled sample, on the portable runner
(the job API that Spark and Flink use): a loadable corpus with manifest, card and report;
reruns skip finished stages; an interrupted stage is redone, and so is everything after it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from pipeline.testing import BEAM_RUNNERS
from pipeline.run import STAGES, run

PORTABLE = BEAM_RUNNERS["portable"]


def file_times(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    summaries = run([f"--output={out}", *PORTABLE])
    return out, summaries


def test_every_stage_completes_with_success_marker_written_last(chain):
    out, summaries = chain
    assert list(summaries) == STAGES
    for stage in STAGES:
        folder = out / stage
        marker = folder / "_SUCCESS"
        assert marker.exists(), stage
        others = [p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p != marker]
        assert marker.stat().st_mtime_ns >= max(others), f"{stage}: a file was written after _SUCCESS"


def test_corpus_loads_and_matches_manifest(chain):
    out, summaries = chain
    corpus = out / "corpus"
    manifest = json.loads((corpus / "manifest.json").read_text())
    shards = sorted((corpus / "data").glob("*.parquet"))
    assert [s["path"] for s in manifest["shards"]] == [f"data/{p.name}" for p in shards]
    for shard, p in zip(manifest["shards"], shards):
        assert hashlib.sha256(p.read_bytes()).hexdigest() == shard["sha256"]
    table = ds.dataset([str(p) for p in shards], format="parquet").to_table()
    assert table.num_rows == manifest["rows"] == summaries["decontaminate"]["pages"]["kept"] > 0
    assert sum(table.column("num_tokens").to_pylist()) == manifest["tokens"]
    for column in ("text", "url", "warc_path", "warc_offset", "lang", "math_score", "recall_round", "num_tokens"):
        assert table.column(column).null_count == 0, column
    from datasets import load_dataset

    loaded = load_dataset("parquet", data_files=[str(p) for p in shards], split="train")
    assert loaded.num_rows == table.num_rows
    card = (corpus / "README.md").read_text()
    for stage in STAGES:
        assert f"| {stage} |" in card
    assert "data_files" in card


def test_pipeline_funnel_and_math_focus(chain):
    out, summaries = chain
    extract_kept = summaries["extract"]["pages_kept"]
    dedup_kept = summaries["dedup"]["counts"]["kept"]
    recalled = summaries["rounds"]["recalled"]
    corpus_rows = summaries["corpus"]["rows"]
    assert extract_kept >= dedup_kept >= recalled >= corpus_rows > 0
    assert recalled < dedup_kept, "the token budget must select part of the pool"
    table = ds.dataset([str(p) for p in (out / "corpus" / "data").glob("*.parquet")]).to_table()
    with_math = sum(1 for n in table.column("num_formulas").to_pylist() if n > 0)
    pool = ds.dataset([str(p) for p in (out / "dedup").glob("*.parquet")]).to_table()
    pool_math = sum(1 for n in pool.column("num_formulas").to_pylist() if n > 0)
    # the recalled corpus is far richer in pages with formulas than the pool it was drawn from
    assert with_math / table.num_rows > 1.5 * pool_math / pool.num_rows


def test_report_tells_the_story(chain):
    out, _ = chain
    report = (out / "report.md").read_text()
    for heading in ("Pages per stage", "Recall rounds", "Math domains found", "Final corpus"):
        assert heading in report
    assert (out / "report_funnel.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_skips_every_complete_stage(chain, capsys):
    out, summaries = chain
    before = file_times(out)
    again = run([f"--output={out}"])
    printed = capsys.readouterr().out
    assert printed.count("skipped (complete)") == len(STAGES)
    assert again["corpus"]["rows"] == summaries["corpus"]["rows"]
    after = file_times(out)
    changed = {k for k in before if after.get(k) != before[k]}
    assert changed <= {"report.md", "report_funnel.png", "report_drops.png"}


def test_interrupted_stage_is_redone_with_everything_after_it(chain, tmp_path):
    out, summaries = chain
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    # an interruption half-way through decontamination: no marker, a shard missing, a stray temp file
    (copy / "decontaminate" / "_SUCCESS").unlink()
    for shard in (copy / "decontaminate").glob("*.parquet"):
        shard.unlink()
    (copy / "decontaminate" / "part-00000-of-00001.parquet.tmp").write_bytes(b"partial")
    before = file_times(copy)
    result = run([f"--output={copy}"])
    after = file_times(copy)
    for stage in ("extract", "dedup", "rounds"):
        assert all(after[k] == v for k, v in before.items() if k.startswith(stage + os.sep)), f"{stage} was redone"
    assert not (copy / "decontaminate" / "part-00000-of-00001.parquet.tmp").exists()
    assert (copy / "corpus" / "_SUCCESS").stat().st_mtime_ns > before["corpus/_SUCCESS"]
    ids = lambda root: sorted(ds.dataset([str(p) for p in (root / "corpus" / "data").glob("*.parquet")]).to_table().column("id").to_pylist())  # noqa: E731
    assert ids(copy) == ids(out)
    assert result["corpus"]["rows"] == summaries["corpus"]["rows"]
