"""Beam runner settings for tests and local checks: the runners every stage must give the same
results on, none of which downloads anything, and the arguments that build a Dataflow job offline."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

# The DirectRunner of Beam >= 2.68 would first try to fetch Prism from the internet.
BEAM_RUNNERS: dict[str, list[str]] = {
    "inprocess": ["--runner=FnApiRunner"],
    "multiprocess": ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    # as the README writes it: beam_utils.pipeline_options adds --environment_type=LOOPBACK for embed
    "portable": ["--runner=PortableRunner", "--job_endpoint=embed"],
}

# Builds a Dataflow job offline (nothing is submitted, nothing is contacted). Bucket and project
# names must be syntactically valid or Beam's option validation tries to create a default bucket.
DATAFLOW_DRY_RUN_ARGS: list[str] = [
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--no_auth",
    "--project=dsm-test-project",
    "--region=us-central1",
    "--temp_location=gs://dsm-test-bucket/tmp",
]


def corpus_fingerprint(out: Path) -> dict:
    """What must not change between runners or runs of ``pipeline.run`` into ``out``: the bytes of
    every corpus shard, and each recall round's cut and recalled pages and tokens."""
    rounds = json.loads((Path(out) / "rounds" / "summary.json").read_text())
    shards = sorted((Path(out) / "corpus" / "data").glob("*.parquet"))
    return {
        "shards": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in shards},
        "rounds": [{k: r.get(k) for k in ("round", "cut", "threshold", "recalled", "recalled_tokens", "new_pages")}
                   for r in rounds["rounds"]],
        "stop_reason": rounds["stop_reason"],
    }
