"""The recall rounds end to end on the sample pool (the bundled WARCs, extracted in-process).

In-process runner: two rounds with discovery; the recalled set of each round is exactly the
top of the pool by (score, id hash) under that round's model, within one page of the budget.
Portable runner: with path discovery off and single-threaded fastText, round two trains on
exactly the same data as round one, recalls the same pages and the loop stops on saturation.
"""
import json

import pyarrow.parquet as pq
import pytest
from pipeline.testing import BEAM_RUNNERS

from classifiers import MathClassifier
from pipeline.rounds import run
from pipeline.rounds.budget import ranking_key
from pipeline.score.transforms import cross_fit_fold
from pipeline.rounds.sample_pool import build_sample_pool
from pipeline.tokens import approx_token_count

BUDGET = 25_000
SMALL = ["--positives-per-round", "600", "--negatives-per-round", "60", "--bucket", "20000", "--thread", "1",
         "--token-budget", str(BUDGET)]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    folder = build_sample_pool(tmp_path_factory.getbasetemp() / "sample_pool")
    return {"dir": folder, "rows": pq.read_table(folder).to_pylist()}


def _recalled(folder):
    return pq.read_table(sorted(folder.glob("*.parquet"))).to_pylist()


def test_two_rounds_in_process(pool, seed_dir, tmp_path):
    out = tmp_path / "rounds"
    summary = run(["--pool", pool["dir"], "--seed", str(seed_dir / "math_seed.jsonl.gz"), "--output", str(out),
                   "--rounds", "2", "--path-min-pages", "3", *SMALL, *BEAM_RUNNERS["inprocess"]])
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    # Two rounds either run to the limit or stop because round 2 found (almost) nothing new.
    assert summary["stop_reason"].startswith(("reached", "saturated in round 2"))
    largest = max(approx_token_count(r["text"]) for r in pool["rows"])
    for r in summary["rounds"]:
        folder = out / f"round_{r['round']}"
        recalled = _recalled(folder / "recalled")
        # Exactly the top of the ranking under this round's model, within one page of the budget.
        # Every page is scored by the cross-fitted model of its fold (the one that never trained on it).
        models = [MathClassifier.load(str(folder / f"model-{f}.bin")) for f in range(2)]
        scores = [models[cross_fit_fold(row["id"], 2)].score([row["text"]])[0] for row in pool["rows"]]
        ranked = sorted(((ranking_key(s, row["id"]), approx_token_count(row["text"]), row["id"])
                         for s, row in zip(scores, pool["rows"])), reverse=True)
        taken, expected = 0, set()
        for _, tokens, page_id in ranked:
            if taken >= BUDGET:
                break
            taken, expected = taken + tokens, expected | {page_id}
        assert {row["id"] for row in recalled} == expected
        assert BUDGET <= r["recalled_tokens"] < BUDGET + largest and r["recalled_tokens"] == taken
        assert r["recalled"] == len(recalled) and r["pool_pages"] == len(pool["rows"])
        assert all(row["num_tokens"] == approx_token_count(row["text"]) for row in recalled)
        for name in ("report.md", "paths.tsv", "domains.tsv", "model-0.bin", "model-1.bin", "summary.json", "_SUCCESS"):
            assert (folder / name).exists(), name
        for png in ("score_histogram.png", "rounds.png"):
            assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        report = (folder / "report.md").read_text()
        assert f"# Recall round {r['round']}" in report and f"{r['recalled']:,} / {r['recalled_tokens']:,}" in report
        assert r["val_roc_auc"] is not None and r["train_negatives"] <= 60 and r["cut"] == "token_budget"
    # recall_round is the first round that recalled a page; overlap is measured on tokens.
    first = {row["id"] for row in _recalled(out / "round_1" / "recalled")}
    second = _recalled(out / "round_2" / "recalled")
    assert all(row["recall_round"] == (1 if row["id"] in first else 2) for row in second)
    shared_tokens = sum(row["num_tokens"] for row in second if row["id"] in first)
    assert summary["rounds"][1]["overlap_with_previous"] == pytest.approx(shared_tokens / summary["rounds"][1]["recalled_tokens"])
    # The new positives of round 2 are the round-1 misses under round 1's accepted paths.
    assert summary["rounds"][1]["new_positives"] == len(_recalled(out / "round_2" / "positives"))
    # The stage output: the last round's recalled pages, the overall report and summary.
    assert sorted(r["id"] for r in _recalled(out / "recalled")) == sorted(r["id"] for r in second)
    assert "| 2 |" in (out / "report.md").read_text() and (out / "_SUCCESS").exists()
    assert json.loads((out / "summary.json").read_text())["recalled"] == len(second)
    # A complete output is returned as it is.
    assert run(["--pool", pool["dir"], "--seed", "unused", "--output", str(out)]) == json.loads((out / "summary.json").read_text())


def test_stops_on_saturation_on_the_portable_runner(pool, seed_dir, tmp_path):
    out = tmp_path / "rounds"
    summary = run(["--pool", pool["dir"], "--seed", str(seed_dir / "math_seed.jsonl.gz"), "--output", str(out),
                   "--rounds", "3", "--path-min-pages", "1000000", "--saturation-new-share", "0.5", *SMALL,
                   *BEAM_RUNNERS["portable"]])
    # The loop stops at the first round whose recalled tokens are at most 50% new, and not before.
    rounds = summary["rounds"]
    assert all(r["new_share"] > 0.5 for r in rounds[1:-1]) and rounds[0]["new_share"] == 1.0
    if summary["stop_reason"].startswith("saturated"):
        assert rounds[-1]["new_share"] <= 0.5 and summary["stop_reason"].startswith(f"saturated in round {len(rounds)}")
    else:
        assert len(rounds) == 3 and not (out / "round_4").exists()
    second = rounds[1]
    assert second["new_positives"] == 0
    recalled = {r["id"]: r for r in _recalled(out / "round_2" / "recalled")}
    new_tokens = sum(r["num_tokens"] for r in recalled.values() if r["recall_round"] == 2)
    assert second["new_tokens"] == new_tokens and second["new_pages"] == sum(
        1 for r in recalled.values() if r["recall_round"] == 2)
