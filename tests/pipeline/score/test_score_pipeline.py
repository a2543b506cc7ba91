"""The score stage on the sample pool: same scores as the classifier itself, rejects with reasons,
the output schema, the summary, and a Dataflow job built offline."""
import gzip
import json

import pyarrow.parquet as pq
import pytest
from pipeline.testing import DATAFLOW_DRY_RUN_ARGS

from classifiers import MathClassifier
from classifiers.train import FastTextConfig, train_from_texts
from pipeline.beam_utils import last_result
from pipeline.rounds.sample_pool import build_sample_pool
from pipeline.schema import MATH_SCORE, schema_with
from pipeline.score import run


@pytest.fixture(scope="module")
def pool_and_model(tmp_path_factory, seed_dir):
    pool = build_sample_pool(tmp_path_factory.getbasetemp() / "sample_pool")
    table = pq.read_table(pool)
    with gzip.open(seed_dir / "math_seed.jsonl.gz", "rt", encoding="utf-8") as fh:
        seed = [json.loads(line)["text"] for line in fh][::10]
    model = str(tmp_path_factory.mktemp("score") / "model.bin")
    # A real model: seed math vs the pool's own pages (unlabelled, mostly not math).
    train_from_texts(seed, table.column("text").to_pylist(), model, FastTextConfig(bucket=20_000),
                     validation_fraction=0.0)
    # Input with two unusable rows: a null text and a null id with text.
    rows = table.to_pylist()
    bad = [{**rows[0], "id": "no-text", "text": None}]
    input_dir = tmp_path_factory.mktemp("score_input")
    pq.write_table(table.from_pylist(rows + bad, schema=table.schema), input_dir / "part-0.parquet")
    return {"input": str(input_dir), "model": model, "rows": rows, "schema": table.schema}


def test_scores_match_the_classifier_and_rejects_have_reasons(pool_and_model, tmp_path):
    out = tmp_path / "scored"
    summary = run(["--model", pool_and_model["model"], "--input", pool_and_model["input"], "--output", str(out),
                   "--runner=FnApiRunner"])
    rows = pool_and_model["rows"]
    assert summary["rows_in"] == len(rows) + 1 and summary["rows_out"] == len(rows)
    assert summary["rejected_by_reason"] == {"missing_text": 1}
    assert sum(summary["score_histogram"].values()) == len(rows)
    scored = pq.read_table(sorted((out / "data").glob("*.parquet")))
    assert scored.schema.names == schema_with(pool_and_model["schema"], MATH_SCORE).names
    assert scored.schema.field("math_score").type == MATH_SCORE.type
    got = dict(zip(scored.column("id").to_pylist(), scored.column("math_score").to_pylist()))
    expected = MathClassifier.load(pool_and_model["model"]).score([r["text"] for r in rows])
    assert got.keys() == {r["id"] for r in rows}
    for row, score in zip(rows, expected):
        assert got[row["id"]] == pytest.approx(score, abs=1e-6)  # float32 column
    rejects = pq.read_table(str(out / "rejects")).to_pylist()
    assert [(r["stage"], r["reason"]) for r in rejects] == [("score", "missing_text")]
    assert (out / "_SUCCESS").exists()
    # A rerun on a complete output returns its summary without work.
    assert run(["--model", "/nonexistent", "--input", pool_and_model["input"], "--output", str(out)]) == summary


def test_dataflow_dry_run_builds_the_job_offline():
    summary = run(["--model", "gs://dsm-test-bucket/model.bin", "--input", "gs://dsm-test-bucket/dedup",
                   "--output", "gs://dsm-test-bucket/score", *DATAFLOW_DRY_RUN_ARGS])
    assert summary["dry_run"] is True and summary["output_schema"][-1] == "math_score"
    names = {t.unique_name for t in last_result().job.proto_pipeline.components.transforms.values()}
    for step in ("ReadParquet", "ScoreWithClassifier/Batch", "ScoreWithClassifier/Score", "WriteRejects"):
        assert any(n.startswith(step) for n in names), step
