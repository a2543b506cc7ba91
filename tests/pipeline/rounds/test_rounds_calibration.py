"""The calibrated cut: hand-computed histograms, the Wilson evidence bound, and a real round on
the sample pool whose recalled set is exactly what the cut and the markup floor select."""
import json

import pyarrow.parquet as pq
import pytest
from pipeline.testing import BEAM_RUNNERS

from classifiers import MathClassifier
from classifiers.text_sources import ReadStats
from pipeline.rounds import calibration as C
from pipeline.rounds import run
from pipeline.rounds.sample_pool import build_sample_pool
from pipeline.rounds.training import bottom_k_ids, renderer_only_filter
from pipeline.score.transforms import cross_fit_fold


def test_bins_are_monotone_and_invert():
    assert C.score_bin(0.5) == C.NUM_BINS // 2 and C.score_bin(0.0) == 0 and C.score_bin(1.0) == C.NUM_BINS - 1
    scores = [0.001, 0.1, 0.5, 0.9, 0.99, 0.999]
    assert [C.score_bin(s) for s in scores] == sorted(C.score_bin(s) for s in scores)
    for s in (0.1, 0.5, 0.9, 0.99):
        assert C.bin_score(C.score_bin(s)) <= s < C.bin_score(C.score_bin(s) + 1)


def test_wilson_lower_bound_by_hand():
    # p=1, n=1, z=1.96: (1 + 1.9208 - 1.96 * sqrt(0.9604)) / (1 + 3.8416) = 1 / 4.8416
    assert C.wilson_lower_bound(1, 1) == pytest.approx(1 / 4.8416, abs=1e-4)
    assert C.wilson_lower_bound(9, 10) == pytest.approx(0.5958, abs=1e-4)
    assert C.wilson_lower_bound(0, 5) == 0.0 and C.wilson_lower_bound(0, 0) == 0.0


def test_cut_separates_a_clean_mixture():
    # 90 non-math pages in bin 100, 10 math pages in bin 900; the evidence says the same.
    cut = C.calibrated_cut({100: 90, 900: 10}, {900: 10}, {100: 90})
    # Youden point: TPR 1, FPR 0, so pi = 10/100; every cut in (100, 900] gives P = R = 1: the lowest wins.
    assert cut.estimated_math_share == pytest.approx(0.1) and cut.estimated_math_pages == pytest.approx(10)
    assert cut.bin == 101 and cut.above == 10
    assert cut.estimated_precision == 1.0 and cut.estimated_recall == 1.0


def test_cut_trades_precision_for_recall_by_hand():
    # Pool: 80 pages in bin 100, 10 in bin 500, 10 in bin 900. Positive evidence: 8 in 900, 2 in 500.
    # Negative evidence: 80 in 100, 5 in 500 (half of bin 500 is non-math).
    cut = C.calibrated_cut({100: 80, 500: 10, 900: 10}, {900: 8, 500: 2}, {100: 80, 500: 5})
    # Youden at bin 101: TPR 1, FPR 5/85; A/N = 0.2 -> pi = (0.2 - 5/85) / (1 - 5/85) = 0.15.
    assert cut.estimated_math_share == pytest.approx((0.2 - 5 / 85) / (1 - 5 / 85))
    # Cut at 501: R = 0.8, P = min(1, 15 * 0.8 / 10) = 1 -> F1 = 0.889; at 101: R = 1, P = 15 / 20 -> F1 = 0.857.
    assert cut.bin == 501 and cut.estimated_recall == pytest.approx(0.8) and cut.estimated_precision == 1.0


def test_beta_below_one_buys_precision_with_recall_by_hand():
    # Pool: 80 in bin 100, 10 in 500, 10 in 900; positives 6 in 900, 4 in 500; negatives 80 in 100, 4 in 500.
    pool, positives, negatives = {100: 80, 500: 10, 900: 10}, {900: 6, 500: 4}, {100: 80, 500: 4}
    # Youden at bin 101: TPR 1, FPR 4/84 -> pi = (0.2 - 4/84) / (1 - 4/84) = 0.16, 16 math pages.
    # Cut 101: R 1, P 16/20 = 0.8 -> F1 0.889, F0.5 0.833. Cut 501: R 0.6, P 16 * 0.6 / 10 = 0.96 -> F1 0.738, F0.5 0.857.
    f1 = C.calibrated_cut(pool, positives, negatives, beta=1.0)
    assert f1.bin == 101 and f1.estimated_precision == pytest.approx(0.8)
    f05 = C.calibrated_cut(pool, positives, negatives, beta=0.5)
    assert f05.bin == 501 and f05.estimated_precision == pytest.approx(0.96) and f05.estimated_recall == pytest.approx(0.6)


def test_a_pool_without_math_recalls_nothing():
    cut = C.calibrated_cut({100: 100}, {900: 10}, {100: 60})
    assert cut.estimated_math_share == 0.0 and cut.bin == C.NUM_BINS and cut.above == 0
    with pytest.raises(ValueError, match="evidence"):
        C.calibrated_cut({100: 1}, {}, {100: 1})


def test_quantile_bin():
    assert C.quantile_bin({10: 1, 20: 1, 30: 2}, 0.5) == 30 and C.quantile_bin({10: 4}, 0.5) == 10
    assert C.quantile_bin({}, 0.5) == C.NUM_BINS


def test_calibrated_round_on_the_sample_pool(seed_dir, tmp_path_factory, tmp_path):
    folder = build_sample_pool(tmp_path_factory.getbasetemp() / "sample_pool")
    rows = pq.read_table(folder).to_pylist()
    out = tmp_path / "rounds"
    # An accepted path (as a person would write paths.tsv): its pages need only the markup floor.
    paths = tmp_path / "paths.tsv"
    paths.write_text("accept\tdomain\tpath_prefix\n1\tgithub.com\t/\n")
    summary = run(["--pool", folder, "--seed", str(seed_dir / "math_seed.jsonl.gz"), "--output", str(out),
                   "--rounds", "1", "--positives-per-round", "600", "--bucket", "20000", "--thread", "1",
                   "--paths", str(paths), *BEAM_RUNNERS["inprocess"]])
    r = summary["rounds"][0]
    assert r["cut"] == "calibrated" and r["positive_evidence"] in ("markup", "seed")
    assert 0 < r["estimated_precision"] <= 1 and 0 < r["estimated_recall"] <= 1
    # Clean negatives: neither under the accepted path nor with markup (each exclusion counted once).
    github = [row for row in rows if row["domain"] == "github.com"]
    markup_elsewhere = [row for row in rows if row["domain"] != "github.com" and (row["num_formulas"] or 0) >= 1]
    assert r["negatives_excluded"] == {"under_accepted_path": len(github), "markup": len(markup_elsewhere)}
    assert r["markup_pages"] > len(markup_elsewhere) > 0
    stats = json.loads((out / "round_1" / "tables" / "stats.json").read_text())["threshold"]
    assert stats["accepted_paths"] == [["github.com", "/"]]
    models = [MathClassifier.load(str(out / "round_1" / f"model-{f}.bin")) for f in range(2)]
    # A page that loads a math renderer but shows no formula needs the higher renderer floor.
    assert stats["bin"] > stats["renderer_floor_bin"] > stats["markup_floor_bin"]
    expected, by_path, by_renderer = set(), set(), set()
    for row in rows:
        b = C.score_bin(models[cross_fit_fold(row["id"], 2)].score([row["text"]])[0])
        markup, under_path = (row["num_formulas"] or 0) >= 1, row["domain"] == "github.com"
        plain = b >= stats["bin"] or (markup and b >= stats["markup_floor_bin"])
        renderer = not plain and row["math_renderer"] is True and b >= stats["renderer_floor_bin"]
        path = not plain and not renderer and under_path and b >= stats["markup_floor_bin"]
        if plain or renderer or path:
            expected.add(row["id"])
        by_renderer |= {row["id"]} if renderer else set()
        by_path |= {row["id"]} if path else set()
    recalled = {x["id"] for x in pq.read_table(out / "round_1" / "recalled").to_pylist()}
    assert recalled == expected and r["recalled"] == len(expected)
    # The path recalled pages that neither the cut nor markup would have, and says how many; so
    # does the renderer floor.
    assert r["recalled_by_accepted_path"] == len(by_path) > 0
    assert r["recalled_by_math_renderer"] == len(by_renderer) > 0
    # The next round's positives leave out exactly the pages recalled only for their renderer
    # (a page under the annotated path has a person's word as well, and stays).
    github_ids = {row["id"] for row in github}
    weak = by_renderer - github_ids
    files = sorted(str(f) for f in (out / "round_1" / "recalled").glob("*.parquet"))
    keep = renderer_only_filter(str(out / "round_1" / "tables" / "stats.json"), 1)
    read = ReadStats()
    admitted = bottom_k_ids(files, 2, len(rows), 0, {f: keep for f in files}, read)  # fold 2: none skipped
    assert admitted == recalled - weak and read.skipped == {"renderer_only_recall": len(weak)} and weak
    assert r["renderer_floor"] == pytest.approx(C.bin_score(stats["renderer_floor_bin"]))
    # Pages with formulas dominate the recall; the cut keeps the pool's non-markup bulk out.
    assert len(recalled) < len(rows) / 2


def test_saturation_share_leaves_out_new_pages_recalled_only_for_their_renderer():
    """``new_share`` (the saturation test) counts the new tokens of pages recalled on strong
    evidence: 300 recalled tokens, 120 of them new, 100 of those from a renderer-only page."""
    from pipeline.rounds.config import RoundsConfig
    from pipeline.rounds.pipeline import summarize_round

    cut = {"mode": "calibrated", "threshold_score": 0.9, "markup_floor": 0.1, "renderer_floor": 0.3}
    stats = {"threshold": cut, "score_bin:0": [8, 0, 700, 0], "score_bin:19": [4, 4, 300, 300],
             "new": [2, 120, 0, 0], "new_by_renderer": [1, 100, 0, 0], "recalled_by_math_renderer": [1, 0, 0, 0]}
    read = {"seed": {"used": 10}, "discovered": {"used": 2}, "negatives": {"used": 5}}
    summary = summarize_round(RoundsConfig(), 2, {"read": read, "train_seconds": 1.0}, {}, {"stats": stats}, [], [], 1.0)
    assert summary["recalled"] == 4 and summary["recalled_tokens"] == 300
    assert summary["new_tokens"] == 120 and summary["new_tokens_by_renderer"] == 100
    assert summary["new_share"] == pytest.approx(20 / 300) and summary["recalled_by_math_renderer"] == 1
    assert summary["renderer_floor"] == 0.3
