"""Every command checks its inputs up front and stops with one line saying what is wrong and how
to fix it; Dataflow runs without the [gcp] extra or with a local --output are refused at once;
the portable runner's embedded job server needs no Docker; Beam's apitools notice is silenced;
stage folders are read through ``parquet_glob`` whatever their layout."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from pipeline.beam_utils import parquet_glob, pipeline_options
from pipeline.paths import REPO_ROOT
from pipeline.testing import DATAFLOW_DRY_RUN_ARGS

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def one_line_error(call, *flags: str) -> str:
    """Runs ``call``; asserts it exits with one ``error:`` line naming each of ``flags``; returns it."""
    with pytest.raises(SystemExit) as exc:
        call()
    message = str(exc.value)
    assert message.startswith("error: ") and "\n" not in message, message
    for flag in flags:
        assert flag in message, (flag, message)
    return message


def test_documented_score_command_without_a_model_is_one_line(tmp_path):
    """The README's score command, exactly as written, in a folder with no model and no pages."""
    command = next(line.split("  #")[0].strip() for line in README.splitlines() if line.startswith("python -m pipeline.score"))
    done = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr[-2000:]
    assert done.stderr.startswith("error: --model out/model.bin: no such file") and "classifiers.train" in done.stderr
    assert not (tmp_path / "out").exists()


def test_every_stage_names_its_missing_input(tmp_path, seed_dir):
    from pipeline.corpus.pipeline import main as corpus_main
    from pipeline.decontaminate.__main__ import main as decontaminate_main
    from pipeline.dedup.__main__ import main as dedup_main
    from pipeline.extract.__main__ import main as extract_main
    from pipeline.rounds.__main__ import main as rounds_main
    from pipeline.score.__main__ import main as score_main

    missing, out = str(tmp_path / "no-such-stage"), str(tmp_path / "out")
    model = tmp_path / "model.bin"
    model.write_bytes(b"not read: the input is checked first")
    assert "no file matches" in one_line_error(lambda: extract_main(["--input", f"{missing}/*.warc.gz", "--output", out]),
                                               "--input", missing)
    assert "looked for" in one_line_error(lambda: dedup_main(["--input", missing, "--output", out]), "--input", missing,
                                          os.path.join(missing, "data", "*.parquet"))
    one_line_error(lambda: score_main(["--model", str(model), "--input", missing, "--output", out]), "--input", missing)
    one_line_error(lambda: decontaminate_main(["--input", missing, "--output", out]), "--input", missing)
    one_line_error(lambda: corpus_main(["--input", missing, "--output", out]), "--input", missing)
    one_line_error(lambda: rounds_main(["--pool", missing, "--seed", str(seed_dir / "math_seed.jsonl.gz"),
                                        "--output", out]), "--pool", missing)
    one_line_error(lambda: rounds_main(["--pool", str(tmp_path), "--seed", f"{missing}/seed.jsonl", "--output", out]),
                   "--seed", missing)
    assert not os.path.exists(out), "nothing may be written before the inputs are checked"


def test_run_checks_config_inputs_and_seed_before_any_stage(tmp_path):
    from pipeline.run import main

    out = tmp_path / "out"
    one_line_error(lambda: main(["--config", str(tmp_path / "nope.yaml"), "--output", str(out)]), "--config", "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("extrct: {num_shards: 2}\n")
    one_line_error(lambda: main(["--config", str(bad), "--output", str(out)]), "--config", "extrct")
    one_line_error(lambda: main(["--input", str(tmp_path / "*.warc.gz"), "--output", str(out)]), "--input", "*.warc.gz")
    one_line_error(lambda: main(["--seed", str(tmp_path / "seed.jsonl"), "--output", str(out)]), "--seed", "seed.jsonl")
    one_line_error(lambda: main(["--stages", "extract,dedupe", "--output", str(out)]), "--stages", "dedupe")
    assert not out.exists()


def test_dataflow_with_a_local_output_is_refused_at_once(tmp_path):
    from pipeline.extract.pipeline import run as extract_run
    from pipeline.run import run

    out = tmp_path / "out"
    one_line_error(lambda: run([f"--output={out}", *DATAFLOW_DRY_RUN_ARGS]), "--output", str(out), "gs://")
    one_line_error(lambda: extract_run(["--input=gs://b/warc/*.warc.gz", f"--output={out}", *DATAFLOW_DRY_RUN_ARGS]),
                   "--output", "DataflowRunner")
    assert not out.exists()


def test_dataflow_without_the_gcp_extra_names_it(tmp_path):
    """apitools hidden, as in an install of ``.[pipeline]`` only: one line naming the extra."""
    code = ("import sys; sys.modules['apitools'] = None\n"
            "from pipeline.run import main\n"
            f"main(['--output=gs://dsm-test-bucket/dsm', *{DATAFLOW_DRY_RUN_ARGS!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == 'error: --runner=DataflowRunner needs apitools; install the [gcp] extra: pip install -e ".[gcp]"'


def test_beam_apitools_notice_is_silenced(tmp_path):
    hide = "import sys; sys.modules['apitools'] = None\n"
    bare = subprocess.run([sys.executable, "-c", hide + "import apache_beam.io"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert "apitools not found" in bare.stderr  # what Beam prints on its own, so the check below can fail
    ours = subprocess.run([sys.executable, "-c", hide + "import pipeline.beam_utils, classifiers.train\n"
                           "import logging; assert not logging.getLogger().handlers"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert ours.returncode == 0 and ours.stderr == "", ours.stderr


def test_lxml_html_clean_is_declared_and_present():
    """trafilatura (through justext) needs lxml's HTML cleaner, split out of lxml; we depend on it by name."""
    from lxml.html.clean import Cleaner  # noqa: F401  (raises ImportError without lxml_html_clean)

    assert '"lxml_html_clean"' in (REPO_ROOT / "setup.py").read_text()


def test_embedded_portable_runner_defaults_to_loopback_workers():
    as_written = pipeline_options(["--runner=PortableRunner", "--job_endpoint=embed"]).get_all_options()
    assert as_written["environment_type"] == "LOOPBACK"
    chosen = pipeline_options(["--runner=PortableRunner", "--job_endpoint", "embed", "--environment_type=PROCESS",
                               "--environment_config={\"command\": \"boot\"}"]).get_all_options()
    assert chosen["environment_type"] == "PROCESS"
    remote = pipeline_options(["--runner=PortableRunner", "--job_endpoint=localhost:8099"]).get_all_options()
    assert remote["environment_type"] is None


def test_parquet_glob_finds_pages_in_every_layout(tmp_path):
    stage = tmp_path / "dedup"
    (stage / "data").mkdir(parents=True)
    (stage / "data" / "part-0.parquet").write_bytes(b"")
    (stage / "rejects").mkdir()
    assert parquet_glob(str(stage)) == str(stage / "data" / "*.parquet")
    own = tmp_path / "mine"
    own.mkdir()
    (own / "a.parquet").write_bytes(b"")
    assert parquet_glob(str(own)) == str(own / "*.parquet")
    # remote folders are told apart by name, without listing them (a dry run is offline)
    assert parquet_glob("gs://b/dsm/extract") == "gs://b/dsm/extract/data/*.parquet"
    assert parquet_glob("gs://b/dsm/rounds/recalled") == "gs://b/dsm/rounds/recalled/*.parquet"
    assert parquet_glob("s3://b/dsm/rounds/round_2/positives/") == "s3://b/dsm/rounds/round_2/positives/*.parquet"
    assert parquet_glob("gs://b/x/*.parquet") == "gs://b/x/*.parquet"


def test_an_unquoted_glob_keeps_every_file():
    """``--input crawl/*.warc.gz`` unquoted: the shell passes every file; none may be dropped."""
    from pipeline.run import parse_args

    args, rest = parse_args(["--input", "a.warc.gz", "b.warc.gz", "--input", "c.warc.gz", "--runner=FnApiRunner"])
    assert args.input == ["a.warc.gz", "b.warc.gz", "c.warc.gz"] and rest == ["--runner=FnApiRunner"]
