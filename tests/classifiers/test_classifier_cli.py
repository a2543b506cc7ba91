"""``python -m classifiers.train`` takes Beam's pipeline options like every command (the README
says so), refuses anything else with one line, and checks its sources before training."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from classifiers.train import main

BEAM_OPTIONS = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2", "--runner=FnApiRunner"]


@pytest.fixture(scope="module")
def sources(shared_data, seed_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train-cli")
    cc = []
    for path in sorted((shared_data / "text").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            cc += [json.loads(line)["text"] for line in fh]
    stage = tmp / "dedup"  # a stage folder: the pages are in data/, the summary beside them
    (stage / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": cc}), stage / "data" / "part-00000-of-00001.parquet")
    (stage / "summary.json").write_text("{}")
    return {"positives": str(seed_dir / "math_seed.jsonl.gz"), "negatives": str(stage), "tmp": tmp}


def test_beam_options_are_accepted(sources):
    model = sources["tmp"] / "model.bin"
    report = main(["--positives", sources["positives"], "--negatives", sources["negatives"], "--output", str(model),
                   "--max-positives", "300", "--bucket", "20000", "--dim", "16", "--thread", "1", *BEAM_OPTIONS])
    assert model.stat().st_size > 0
    counts = report["counts"]
    # the negatives came from the stage folder's data/ (30 Common Crawl documents), not from summary.json
    assert counts["train_negatives"] + counts["validation_negatives"] + counts.get("empty_after_normalization", 0) >= 25
    assert counts["train_positives"] > 0


def test_unknown_flag_is_one_line(sources, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--positives", sources["positives"], "--negatives", sources["negatives"], "--output", "m.bin",
              "--no-such-flag", "3", *BEAM_OPTIONS])
    message = str(exc.value)
    assert message.startswith("error: ") and "--no-such-flag 3" in message and "\n" not in message
    assert "--direct_running_mode" not in message


def test_missing_source_is_one_line_naming_the_flag(sources, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--positives", sources["positives"], "--negatives", str(tmp_path / "nothing-here"),
              "--output", str(tmp_path / "m.bin")])
    message = str(exc.value)
    assert message.startswith("error: --negatives:") and "nothing-here" in message and "\n" not in message
    assert not (tmp_path / "m.bin").exists()
