"""The last recall round's cut, applied again to the text that goes into the corpus.

With the two-tier extraction (the default) the rounds score the fast tier's text, and the refine
stage then replaces it by the precise extractor's text. The two can say different things about a
page: the fast tier may take a pager or a list of figures for the main content of a page whose
real text is a spam list, and a page recalled for such a text would reach the corpus on the
strength of words it does not hold. The single-tier path never has that gap: the text it scores
is the text it keeps.

So the refined rows are scored again with the last round's cross-fitted models (each page by the
model that scored it in the round, ``cross_fit_fold``), and a page whose precise text has no
formula markup (fewer than ``markup_min_formulas``) is kept only if that score passes the round's
threshold (``keeps_on_precise_text``; a page under a path a person gave with ``--paths`` needs the
markup floor, as in the round). A page whose precise text carries formulas keeps its place:
its markup is evidence that does not depend on the classifier, and the markup floor was set on
the scores of fast-tier texts, so applying it to a precise text's score would decide on noise
(on the bundled sample it would have dropped a math blog post scored 0.050 against a floor of
0.055). ``math_score`` becomes the score of the text the row holds. A failing page is a counted reject (``below_cut_on_precise_text``, with its
score and the cut), never a silent drop. Rows whose text was not replaced (single tier, WET
records) are not scored again. A token-budget cut (``--token-budget``) is not re-applied: the
budget is a number of tokens of the fast texts, so no threshold carries over.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.beam_utils import count, join, read_json
from pipeline.rounds import calibration
from pipeline.rounds.config import RoundsConfig
from pipeline.rounds.discovery import PathMatcher
from pipeline.rounds.training import model_paths, round_dir
from pipeline.rounds.transforms import formulas_of, renderer_of
from pipeline.schema import make_reject
from pipeline.score.transforms import REJECTS, ScoreWithClassifier

REASON = "below_cut_on_precise_text"


@dataclass(frozen=True)
class FinalCut:
    """What the recheck needs of a finished rounds output: the last round's models, the file that
    holds its cut (read by the workers) and the formula count that makes a page a markup page."""

    round_index: int
    models: tuple[str, ...]
    cut_path: str
    markup_min_formulas: int


def final_cut_of(rounds_output: str, dry_run: bool = False) -> FinalCut | None:
    """The last round's cut of ``rounds_output`` (``pipeline.rounds``), or None when that cut is a
    token budget. A dry run reads nothing and names round one's files."""
    if dry_run:
        r, min_formulas = 1, RoundsConfig().markup_min_formulas
    else:
        summary = read_json(join(rounds_output, "summary.json"))
        r = int(summary["rounds"][-1]["round"])
        min_formulas = int(summary.get("parameters", {}).get("markup_min_formulas", RoundsConfig().markup_min_formulas))
    cut_path = join(round_dir(rounds_output, r), "tables", "stats.json")
    if not dry_run and read_json(cut_path)["threshold"].get("mode") != "calibrated":
        return None
    return FinalCut(r, tuple(model_paths(rounds_output, r)), cut_path, min_formulas)


def keeps_on_precise_text(score: float, formulas: int, cut: dict, markup_min_formulas: int,
                          under_accepted_path: bool = False, renderer: bool = False) -> bool:
    """Whether a re-extracted page stays: it carries at least ``markup_min_formulas`` formulas, or
    its precise text passes the round's calibrated cut as the round applies it
    (``calibration.above_calibrated_cut``: the threshold bin, the markup floor for a page under
    an annotated path, ``under_accepted_path``, or the renderer floor for a page that loads a math
    renderer, ``renderer``).

    >>> from pipeline.rounds.calibration import score_bin
    >>> cut = {"bin": score_bin(0.9), "markup_floor_bin": score_bin(0.05)}
    >>> keeps_on_precise_text(0.95, 0, cut, 1), keeps_on_precise_text(0.5, 0, cut, 1), keeps_on_precise_text(0.01, 2, cut, 1)
    (True, False, True)
    >>> keeps_on_precise_text(0.5, 0, cut, 1, under_accepted_path=True), keeps_on_precise_text(0.01, 0, cut, 1, True)
    (True, False)
    >>> cut["renderer_floor_bin"] = score_bin(0.2)
    >>> keeps_on_precise_text(0.3, 0, cut, 1, renderer=True), keeps_on_precise_text(0.1, 0, cut, 1, renderer=True)
    (True, False)
    """
    return formulas >= markup_min_formulas or calibration.above_calibrated_cut(
        score, 0, cut, markup_min_formulas, under_accepted_path, renderer)


class KeepAboveCutFn(beam.DoFn):
    """Scored rows -> the rows that pass the round's cut; the others to ``rejects``."""

    def __init__(self, cut_path: str, markup_min_formulas: int, namespace: str, stage: str):
        self.cut_path = cut_path
        self.markup_min_formulas = markup_min_formulas
        self.namespace = namespace
        self.stage = stage
        self._cut = None

    def setup(self):
        with FileSystems.open(self.cut_path) as fh:
            self._cut = json.loads(fh.read().decode("utf-8"))["threshold"]
        self._paths = PathMatcher.of_cut(self._cut)

    def process(self, row):
        formulas, renderer = formulas_of(row), renderer_of(row)
        under_path = self._paths.matches(row.get("domain"), row.get("url"))
        if keeps_on_precise_text(row["math_score"], formulas, self._cut, self.markup_min_formulas, under_path,
                                 renderer):
            count(self.namespace, "above_cut_on_precise_text")
            yield row
            return
        count(self.namespace, f"rejected:{REASON}")
        detail = (f"score {row['math_score']:.4f} on the precise text, {formulas} formulas; "
                  f"the round's cut {self._cut['threshold']:.4f}")
        if renderer and self._cut.get("renderer_floor") is not None:
            detail += f", renderer floor {self._cut['renderer_floor']:.4f} (the page loads a math renderer)"
        yield beam.pvalue.TaggedOutput(REJECTS, make_reject(self.stage, row.get("warc_path") or "",
                                                            row.get("warc_offset") if row.get("warc_offset") is not None else -1,
                                                            row.get("url"), REASON, detail))


def _count_score_reject(reject: dict, namespace: str) -> dict:
    count(namespace, f"rejected:{reject['reason']}")
    return reject


class RecheckCut(beam.PTransform):
    """Rows with their final text -> ``{"rows": those that pass the cut, scored again; "rejects": the rest}``."""

    def __init__(self, final_cut: FinalCut, namespace: str, stage: str, batch_size: int = 256):
        super().__init__()
        self.final_cut = final_cut
        self.namespace = namespace
        self.stage = stage
        self.batch_size = batch_size

    def expand(self, rows):
        scored = rows | "ScoreAgain" >> ScoreWithClassifier(list(self.final_cut.models), self.batch_size)
        kept = scored["scored"] | "KeepAboveCut" >> beam.ParDo(
            KeepAboveCutFn(self.final_cut.cut_path, self.final_cut.markup_min_formulas, self.namespace, self.stage)
        ).with_outputs(REJECTS, main="rows")
        score_rejects = scored["rejects"] | "CountScoreRejects" >> beam.Map(_count_score_reject, self.namespace)
        return {"rows": kept.rows, "rejects": (kept[REJECTS], score_rejects) | "RecheckRejects" >> beam.Flatten()}
