"""Every stage's Dataflow job, built offline (``--dry_run=True --no_auth``: nothing is submitted).

Checks, per stage: the labelled composite steps are in the job graph, no step carries a large
in-graph payload (e.g. a ``beam.Create`` of the data), and the options that reach Dataflow
(``--setup_file`` or ``--sdk_container_image``) are the ones given.
"""
from __future__ import annotations

import importlib

import pytest
from apache_beam.options.pipeline_options import SetupOptions, WorkerOptions

from pipeline import beam_utils
from pipeline.paths import REPO_ROOT
from pipeline.testing import DATAFLOW_DRY_RUN_ARGS

BUCKET = "gs://dsm-test-bucket/dsm"
MAX_STEP_PAYLOAD = 256 * 1024  # bytes; the data itself must never travel inside the graph

STAGES = {
    "extract": ("pipeline.extract.pipeline",
                ["--input=gs://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/*/warc/*.warc.gz", f"--output={BUCKET}/extract"],
                ["ReadRecords", "WriteRejects"]),
    "dedup": ("pipeline.dedup.pipeline", [f"--input={BUCKET}/extract", f"--output={BUCKET}/dedup"], ["DedupUrls", "DedupNearDuplicates"]),
    "score": ("pipeline.score.pipeline", [f"--model={BUCKET}/model.bin", f"--input={BUCKET}/dedup", f"--output={BUCKET}/score"],
              ["ScoreWithClassifier"]),
    "rounds": ("pipeline.rounds.pipeline",
               [f"--pool={BUCKET}/dedup", f"--seed={BUCKET}/seed/*.parquet", f"--output={BUCKET}/rounds"], ["Score"]),
    "decontaminate": ("pipeline.decontaminate.pipeline", [f"--input={BUCKET}/rounds/recalled", f"--output={BUCKET}/decontaminate"],
                      ["Decontaminate"]),
    "corpus": ("pipeline.corpus.pipeline", [f"--input={BUCKET}/decontaminate", f"--output={BUCKET}/corpus"],
               ["WriteCorpus/CountTokens", "WriteCorpus/WriteShards"]),
}


def build_job(stage: str, extra: list[str]):
    module, args, _ = STAGES[stage]
    summary = importlib.import_module(module).run(args + DATAFLOW_DRY_RUN_ARGS + extra)
    result = beam_utils.last_result()
    assert result is not None and hasattr(result, "job"), f"{stage} did not build a Dataflow job"
    return summary, result.job


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_builds_dataflow_job_offline(stage, capfd):
    summary, job = build_job(stage, [f"--setup_file={REPO_ROOT / 'setup.py'}"])
    captured = capfd.readouterr()
    # the package is staged as an sdist built by `python -m build` (the [gcp] extra installs it)
    assert "No module named build" not in captured.err + captured.out
    assert summary.get("dry_run") is True
    transforms = job.proto_pipeline.components.transforms
    names = {t.unique_name for t in transforms.values()}
    for step in STAGES[stage][2]:
        assert any(n == step or n.startswith(step + "/") or ("/" + step) in n for n in names), (stage, step, sorted(names)[:40])
    largest = max((len(t.spec.payload), t.unique_name) for t in transforms.values())
    assert largest[0] < MAX_STEP_PAYLOAD, f"{stage}: step {largest[1]} carries {largest[0]} bytes in the graph"
    options = job.options
    assert options.view_as(SetupOptions).setup_file == str(REPO_ROOT / "setup.py")
    assert options.get_all_options()["runner"] == "DataflowRunner"
    assert options.get_all_options()["region"] == "us-central1"


def test_custom_worker_image_reaches_the_job():
    image = "us-central1-docker.pkg.dev/dsm-test-project/dsm/dsm-worker:v1"
    _, job = build_job("corpus", [f"--sdk_container_image={image}"])
    assert job.options.view_as(WorkerOptions).sdk_container_image == image


def test_whole_chain_with_the_common_crawl_config_builds_offline(capsys):
    """``configs/run/commoncrawl.yaml`` (the paper's settings) is accepted by every stage, and the
    orchestrator builds every job without touching the (unreachable) gs:// output."""
    from pipeline.run import STAGES, run

    summaries = run(["--config", str(REPO_ROOT / "configs" / "run" / "commoncrawl.yaml"),
                     "--input=gs://dsm-test-bucket/warc/*.warc.gz", f"--output={BUCKET}/chain",
                     "--seed=gs://dsm-test-bucket/owm/*.parquet", *DATAFLOW_DRY_RUN_ARGS])
    assert list(summaries) == STAGES
    assert all(s.get("dry_run") is True for s in summaries.values())
    assert summaries["rounds"]["parameters"]["token_budget"] == 40_000_000_000
    printed = capsys.readouterr().out
    assert printed.count("dry run: job built, not submitted") == len(STAGES)
    assert "done in" not in printed and "nothing submitted" in printed.splitlines()[-1]
