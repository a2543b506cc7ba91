"""The whole chain on the bundled sample, on the portable runner (the job API that Spark and Flink
use), run as the README writes it (``python -m pipeline.run --runner=PortableRunner
--job_endpoint=embed`` in a fresh folder): a loadable corpus with manifest, card and report;
every stage folder opens as a dataset; reruns skip finished stages; an interrupted stage is
redone, and so is everything after it."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from pipeline.paths import REPO_ROOT
from pipeline.run import STAGES, run

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DOCUMENTED_PORTABLE_RUN = "python -m pipeline.run --runner=PortableRunner --job_endpoint=embed"


def file_times(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The README's command, exactly as written, in an empty folder (it writes ./out)."""
    assert DOCUMENTED_PORTABLE_RUN in README
    cwd = tmp_path_factory.mktemp("run")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = shlex.split(DOCUMENTED_PORTABLE_RUN)
    done = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "docker" not in done.stderr.lower()
    out = cwd / "out"
    summaries = {stage: json.loads((out / stage / "summary.json").read_text()) for stage in STAGES}
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
    pool = ds.dataset([str(p) for p in (out / "dedup" / "data").glob("*.parquet")]).to_table()
    pool_math = sum(1 for n in pool.column("num_formulas").to_pylist() if n > 0)
    # the recalled corpus is far richer in pages with formulas than the pool it was drawn from
    assert with_math / table.num_rows > 1.5 * pool_math / pool.num_rows


def test_report_tells_the_story(chain):
    out, _ = chain
    report = (out / "report.md").read_text()
    for heading in ("Pages per stage", "Recall rounds", "Math domains found", "Final corpus"):
        assert heading in report
    assert (out / "report_funnel.png").read_bytes()[:4] == b"\x89PNG"


def test_every_stage_says_where_the_time_went(chain):
    out, summaries = chain
    report = (out / "report.md").read_text()
    table = report.split("## Time per stage", 1)[1].split("\n## ", 1)[0]
    shares = []
    for name in STAGES:
        timing = json.loads((out / name / "summary.json").read_text())["timing"]
        assert timing == summaries[name]["timing"] and timing["seconds"] > 0
        assert timing["pages_per_s"] == pytest.approx(timing["pages_in"] / timing["seconds"], rel=0.01)
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        shares.append(int(row.rsplit("|", 2)[1].strip().rstrip("%")))
    assert 97 <= sum(shares) <= 103  # rounded shares of the run


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
    for shard in (copy / "decontaminate" / "data").glob("*.parquet"):
        shard.unlink()
    (copy / "decontaminate" / "data" / "part-00000-of-00001.parquet.tmp").write_bytes(b"partial")
    before = file_times(copy)
    result = run([f"--output={copy}"])
    after = file_times(copy)
    for stage in ("extract", "dedup", "rounds"):
        assert all(after[k] == v for k, v in before.items() if k.startswith(stage + os.sep)), f"{stage} was redone"
    assert not (copy / "decontaminate" / "data" / "part-00000-of-00001.parquet.tmp").exists()
    assert (copy / "corpus" / "_SUCCESS").stat().st_mtime_ns > before["corpus/_SUCCESS"]
    ids = lambda root: sorted(ds.dataset([str(p) for p in (root / "corpus" / "data").glob("*.parquet")]).to_table().column("id").to_pylist())  # noqa: E731
    assert ids(copy) == ids(out)
    assert result["corpus"]["rows"] == summaries["corpus"]["rows"]


def open_with_every_reader(folder: Path) -> dict[str, int]:
    """Rows of a folder of shards as pyarrow, pandas, Hugging Face ``datasets`` and DuckDB read it."""
    import duckdb
    import pandas as pd
    from datasets import load_dataset

    return {
        "pyarrow": ds.dataset(str(folder), format="parquet").count_rows(),
        "pandas": len(pd.read_parquet(folder)),
        "datasets": load_dataset("parquet", data_files=str(folder / "*.parquet"), split="train").num_rows,
        "duckdb": duckdb.sql(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchall()[0][0],
    }


@pytest.mark.parametrize("stage,rows_key", [("extract", "pages_kept"), ("dedup", "counts.kept"),
                                            ("decontaminate", "pages.kept"), ("corpus", "rows")])
def test_every_stage_folder_opens_as_a_dataset(chain, stage, rows_key):
    out, summaries = chain
    expected = summaries[stage]
    for key in rows_key.split("."):
        expected = expected[key]
    folder = out / stage / "data"
    assert sorted({p.suffix for p in folder.iterdir()}) == [".parquet"], "only shards in a stage's data/"
    assert open_with_every_reader(folder) == dict.fromkeys(("pyarrow", "pandas", "datasets", "duckdb"), expected)
    assert expected > 0


def test_recalled_pages_open_as_a_dataset(chain):
    out, summaries = chain
    counts = open_with_every_reader(out / "rounds" / "recalled")
    assert set(counts.values()) == {summaries["rounds"]["recalled"]}


def _python_block_after(text: str, marker: str) -> str:
    start = text.index("```python", text.index(marker)) + len("```python")
    return text[start:text.index("```", start)]


def test_corpus_entry_points_of_readme_and_card_agree_and_work(chain, monkeypatch, tmp_path):
    """The README's and the card's loading instructions, executed as written on the corpus folder."""
    import datasets
    import duckdb
    import pyarrow

    # A fresh Hugging Face cache: a cached build of another ./out/corpus must not answer for this one.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))

    out, summaries = chain
    rows = summaries["corpus"]["rows"]
    monkeypatch.chdir(out.parent)  # the README names ./out/corpus
    readme_block = _python_block_after(README, "## Use the corpus for training")
    card = (out / "corpus" / "README.md").read_text()
    card_block = _python_block_after(card, "## Load it").replace("<this folder>", str(out / "corpus"))
    assert "out/corpus/data" in readme_block and "data/*.parquet" in card_block
    results = []
    for line in [*readme_block.strip().splitlines(), *card_block.strip().splitlines()]:
        code = line.split("  #")[0].strip()
        if not code or code.startswith(("import ", "from ")):
            continue
        expr = code.split("=", 1)[1] if " = " in code else code
        results.append(eval(expr, {"pyarrow": pyarrow, "ds": ds, "datasets": datasets, "load_dataset": datasets.load_dataset,
                                   "duckdb": duckdb}))
    assert len(results) >= 8
    counted = []
    for r in results:
        if isinstance(r, ds.Dataset):
            counted.append(r.count_rows())
        elif isinstance(r, pyarrow.Table):
            counted.append(r.num_rows)
        elif isinstance(r, datasets.Dataset):
            counted.append(r.num_rows)
        else:  # a DuckDB relation of count(*)
            counted.append(r.fetchall()[0][0])
    assert counted == [rows] * len(results)


def test_report_drops_count_pages_and_records_apart(chain):
    from pipeline.report import BELOW_CUT, drop_reasons, skipped_records

    out, summaries = chain
    drops, records = drop_reasons(summaries), skipped_records(summaries)
    rounds = summaries["rounds"]
    assert drops["rounds"][BELOW_CUT] == rounds["pool_rows"] - rounds["recalled"] > 0
    assert drops["rounds"][BELOW_CUT] == summaries["dedup"]["counts"]["kept"] - rounds["recalled"]
    skipped = summaries["extract"]["skipped"]
    assert sum(skipped.values()) > 0 and records["extract"] == dict(sorted(skipped.items(), key=lambda kv: -kv[1]))
    assert not set(skipped) & set(drops.get("extract", {})), "skipped records are not counted as dropped pages"
    report = (out / "report.md").read_text()
    assert f"{BELOW_CUT} {drops['rounds'][BELOW_CUT]:,}" in report
    assert "records" in report.split("Archive records skipped")[1].split("##")[0]
    assert (out / "report_drops.png").read_bytes()[:4] == b"\x89PNG"


def test_readme_says_what_the_training_jobs_need():
    section = README.split("## Use the corpus for training")[1].split("\n## ")[0]
    assert '".[train]"' in section and "torch" in section


# Byte-identical corpora on the in-process, multi-process and portable runners are
# tests/pipeline/test_determinism.py's case (real crawls, a third of the seed): a second full chain
# here on the whole seed cost ~160 s of the suite's budget for no runner that case does not run.


def test_refine_keeps_a_page_only_if_its_precise_text_passes_the_last_cut(chain, tmp_path, monkeypatch):
    """Every pool page handed to refine as if recalled (fast-tier text, a top score): with the
    rounds' output as ``--recheck-cut``, a page is kept exactly when its precise text carries
    formulas or the last round's model, scoring that text, puts it above the round's cut; the
    others are counted rejects."""
    import pyarrow.parquet as pq

    from classifiers.math_classifier import MathClassifier
    from pipeline.extract import refine
    from pipeline.rounds.discovery import PathMatcher
    from pipeline.rounds.recheck import REASON, final_cut_of, keeps_on_precise_text
    from pipeline.schema import MATH_SCORE, RECALL_ROUND, schema_with
    from pipeline.score.transforms import cross_fit_fold

    out, summaries = chain
    monkeypatch.chdir(out.parent)
    assert summaries["refine"]["parameters"]["final_cut"] is not None and summaries["refine"]["accounted"]
    pool = pq.read_table(sorted((out / "dedup" / "data").glob("*.parquet")))
    schema = schema_with(pool.schema, MATH_SCORE, RECALL_ROUND)
    rows = [{**r, "math_score": 0.999, "recall_round": 1} for r in pool.to_pylist()]
    pq.write_table(pa_table(rows, schema), tmp_path / "all.parquet")
    summary = refine.run(["--input", str(tmp_path / "all.parquet"), "--output", str(tmp_path / "refined"),
                          "--recheck-cut", str(out / "rounds"), "--runner=FnApiRunner"])
    assert summary["accounted"] and summary["rows_in"] == len(rows)

    cut = final_cut_of(str(out / "rounds"))
    threshold = json.loads(Path(cut.cut_path).read_text())["threshold"]
    models = [MathClassifier.load(m) for m in cut.models]
    kept = pq.read_table(sorted((tmp_path / "refined" / "data").glob("*.parquet"))).to_pylist()
    wet = [r for r in kept if r["source_format"] == "text"]  # their text is the one scored: not rechecked
    assert summary["passed_through"] == len(wet) == sum(r["source_format"] == "text" for r in rows)
    paths = PathMatcher(tuple(p) for p in threshold["accepted_paths"])
    for row in (r for r in kept if r["source_format"] != "text"):
        score = models[cross_fit_fold(row["id"], len(models))].score([row["text"]])[0]
        assert row["math_score"] == pytest.approx(score, abs=1e-6)
        under_path = paths.matches(row["domain"], row["url"])  # accepted paths need only the markup floor
        assert keeps_on_precise_text(score, row["num_formulas"] or 0, threshold, cut.markup_min_formulas,
                                     under_path, row["math_renderer"] is True), row["url"]
        assert (row["num_formulas"] or under_path or score >= threshold["threshold"] - 0.01
                or (row["math_renderer"] and score >= threshold["renderer_floor"] - 0.01)), row["url"]
    rejects = pq.read_table(sorted((tmp_path / "refined" / "rejects").glob("*.parquet"))).to_pylist()
    below = [r for r in rejects if r["reason"] == REASON]
    assert summary["rejected"][REASON] == len(below) > len(rows) // 2  # the pool is mostly not math
    assert {r["url"] for r in below}.isdisjoint(r["url"] for r in kept)
    assert len(kept) >= 0.8 * summaries["rounds"]["recalled"]  # the recalled math keeps its place


def pa_table(rows, schema):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema)
