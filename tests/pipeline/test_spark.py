"""The extract stage on a real Spark runner (Beam's Spark 3 job server, embedded local[*] master).

Skips with the reason unless Java and the job-server jar (``BEAM_SPARK_JOB_SERVER_JAR``) are
present: the jar cannot be downloaded here. The same job API is exercised for every stage
through ``--runner=PortableRunner --job_endpoint=embed`` in the other tests.
"""
from __future__ import annotations

import os
import shutil

import pyarrow.dataset as ds
import pytest

from pipeline.paths import SAMPLE_DIR

JAR = os.environ.get("BEAM_SPARK_JOB_SERVER_JAR", "")


@pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed")
@pytest.mark.skipif(not (JAR and os.path.exists(JAR)),
                    reason="no Spark job-server jar: set BEAM_SPARK_JOB_SERVER_JAR to beam-runners-spark-3-job-server-<version>.jar")
def test_extract_on_spark_runner(tmp_path):
    from pipeline.extract.pipeline import run

    out = tmp_path / "extract"
    summary = run([f"--input={SAMPLE_DIR / 'warc' / 'resiliparse__warcfile.warc.gz'}", f"--output={out}",
                   "--runner=SparkRunner", f"--spark_job_server_jar={JAR}", "--environment_type=LOOPBACK"])
    rows = ds.dataset(sorted(str(p) for p in (out / "data").glob("*.parquet")), format="parquet").to_table().num_rows
    assert rows > 0
    assert (out / "_SUCCESS").exists()
    assert summary
