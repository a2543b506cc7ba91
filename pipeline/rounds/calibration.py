"""The calibrated cut of a recall round: which classifier score separates math from the rest of
*this* pool, and the precision and recall that cut implies, as pure functions over histograms.

Why not a token budget: a fixed budget keeps the same amount of text whatever the pool holds,
so it keeps non-math pages when the pool has little math and drops math when it has much (the
paper knew its budget, 40B tokens, from experiments; a new crawl does not). The cut here is
derived from the classifier and the pool, with no number that depends on the pool's size.

Evidence (every pool page is scored by a model that never trained on it; ``transforms.py``):
- *Positive evidence*: pool pages that carry math markup (at least ``markup_min_formulas``
  formulas found by the extractor: TeX, MathML, MathJax/KaTeX sources, LaTeX images). They are
  web pages like the math we look for, unlike the seed (textbook solutions or OpenWebMath
  text). When the pool holds fewer than ``min_positive_evidence`` of them, the held-out seed
  positives of the round's training stand in.
- *Negative evidence*: the round's clean negatives (a random sample of the pool without markup,
  without pages recalled before and without accepted math domains), scored out of fold.

From the score histograms of the pool (``A``), the positive evidence (``TPR``) and the negative
evidence (``FPR``), the pool's math share is estimated by adjusted classify-and-count (Forman,
2005) at the score where ``TPR - FPR`` is largest: ``pi = (A/N - FPR) / (TPR - FPR)``. For each
candidate cut ``t`` the implied counts are ``math above t = pi N TPR(t)`` and ``precision(t) =
min(1, pi N TPR(t) / A(t))``, ``recall(t) = TPR(t)``; the cut is the ``t`` with the largest
implied F-beta (``RoundsConfig.cut_beta``, default 0.5: precision weighs more than recall).
A pool with no math (``pi`` = 0) gets the cut above every page.

Scores are binned in logit space (``BIN_WIDTH`` logits, from ``-LOGIT_RANGE`` to
``+LOGIT_RANGE``) so that the crowded region near a probability of 1 keeps its resolution; a
page is above the cut when its bin index is at least the cut's.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LOGIT_RANGE = 12.0
BIN_WIDTH = 0.02
NUM_BINS = int(2 * LOGIT_RANGE / BIN_WIDTH)  # 1200


def score_bin(score: float) -> int:
    """The logit bin of a probability in [0, 1] (monotone in the score)."""
    p = min(1.0, max(0.0, float(score)))
    eps = 1e-12
    logit = math.log(max(p, eps)) - math.log(max(1.0 - p, eps))
    b = int(math.floor((logit + LOGIT_RANGE) / BIN_WIDTH))
    return min(NUM_BINS - 1, max(0, b))


def bin_score(b: int) -> float:
    """The probability at the lower edge of bin ``b`` (a page in bin >= b scores at least about this)."""
    logit = -LOGIT_RANGE + b * BIN_WIDTH
    return 1.0 / (1.0 + math.exp(-logit))


def above_calibrated_cut(score: float, formulas: int, cut: Mapping, markup_min_formulas: int,
                         under_accepted_path: bool = False, renderer: bool = False) -> bool:
    """Whether a page with this score and formula count is recalled by a calibrated cut (the
    ``CalibratedCutFn`` dict: ``bin``, ``markup_floor_bin``, ``renderer_floor_bin``): its score's bin
    is at least the cut's, or it has evidence besides its score and its bin reaches that evidence's
    floor. Strong evidence, with the markup floor: at least ``markup_min_formulas`` formulas, or a
    page under a URL path a person annotated as math (``under_accepted_path``: ``--paths``, the
    paper's hand-annotated paths). Weaker evidence, with the higher renderer floor: the page loads
    a math renderer (``renderer``: MathJax/KaTeX) but no formula was found in it. A cut without a
    ``renderer_floor_bin`` (written before it existed) gives the renderer no floor.

    >>> cut = {"bin": score_bin(0.9), "markup_floor_bin": score_bin(0.05)}
    >>> above_calibrated_cut(0.95, 0, cut, 1), above_calibrated_cut(0.5, 0, cut, 1), above_calibrated_cut(0.5, 2, cut, 1)
    (True, False, True)
    >>> above_calibrated_cut(0.01, 2, cut, 1), above_calibrated_cut(0.5, 2, cut, 3)
    (False, False)
    >>> above_calibrated_cut(0.5, 0, cut, 1, under_accepted_path=True), above_calibrated_cut(0.01, 0, cut, 1, True)
    (True, False)
    >>> cut["renderer_floor_bin"] = score_bin(0.2)
    >>> above_calibrated_cut(0.3, 0, cut, 1, renderer=True), above_calibrated_cut(0.1, 0, cut, 1, renderer=True)
    (True, False)
    >>> above_calibrated_cut(0.3, 0, cut, 1), above_calibrated_cut(0.1, 2, cut, 1, renderer=True)
    (False, True)
    """
    b = score_bin(score)
    if b >= cut["bin"]:
        return True
    if (formulas >= markup_min_formulas or under_accepted_path) and b >= cut["markup_floor_bin"]:
        return True
    return renderer and b >= cut.get("renderer_floor_bin", NUM_BINS)


def histogram(scores: Iterable[float]) -> dict[int, int]:
    """Pages per logit bin (sparse)."""
    out: dict[int, int] = {}
    for s in scores:
        b = score_bin(s)
        out[b] = out.get(b, 0) + 1
    return out


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval of a binomial share (0 for no trials).

    >>> round(wilson_lower_bound(1, 1), 3), round(wilson_lower_bound(9, 10), 3)
    (0.207, 0.596)
    """
    if trials <= 0:
        return 0.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / denom)


def _tail(hist: Mapping[int, int]) -> list[int]:
    """``tail[b]`` = pages in bins >= b, for b in 0..NUM_BINS (tail[NUM_BINS] = 0)."""
    tail = [0] * (NUM_BINS + 1)
    for b in range(NUM_BINS - 1, -1, -1):
        tail[b] = tail[b + 1] + int(hist.get(b, 0))
    return tail


@dataclass(frozen=True)
class Cut:
    """A calibrated cut and what it implies for the pool."""

    bin: int  # pages with score_bin >= bin are above the cut
    threshold: float  # the probability at the cut's lower edge
    estimated_precision: float
    estimated_recall: float
    estimated_math_share: float
    estimated_math_pages: float
    above: int  # pool pages above the cut
    positive_evidence: str  # "markup" or "seed"
    positive_pages: int
    negative_pages: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def calibrated_cut(pool: Mapping[int, int], positives: Mapping[int, int], negatives: Mapping[int, int],
                   positive_evidence: str = "markup", beta: float = 1.0) -> Cut:
    """The cut with the largest implied F-beta for the pool (see the module docstring).

    ``pool``, ``positives`` and ``negatives`` are logit-bin histograms (``histogram``). Raises
    ``ValueError`` when either evidence histogram is empty.
    """
    n_pos, n_neg, n = sum(positives.values()), sum(negatives.values()), sum(pool.values())
    if n_pos <= 0 or n_neg <= 0:
        raise ValueError(f"a calibrated cut needs positive and negative evidence (got {n_pos} and {n_neg} pages)")
    a, tp, fp = _tail(pool), _tail(positives), _tail(negatives)
    # The math share, by adjusted classify-and-count where TPR - FPR is largest.
    youden = max(range(NUM_BINS), key=lambda b: (tp[b] / n_pos - fp[b] / n_neg, -b))
    tpr, fpr = tp[youden] / n_pos, fp[youden] / n_neg
    share = 0.0
    if n and tpr > fpr:
        share = min(1.0, max(0.0, (a[youden] / n - fpr) / (tpr - fpr)))
    math_pages = share * n
    best = None
    for b in range(NUM_BINS + 1):
        recall = tp[b] / n_pos
        precision = min(1.0, math_pages * recall / a[b]) if a[b] else 0.0
        f = (1 + beta * beta) * precision * recall / (beta * beta * precision + recall) if precision + recall else 0.0
        if best is None or f > best[0] + 1e-12:
            best = (f, b, precision, recall)
    _, b, precision, recall = best
    if math_pages <= 0:
        b, precision, recall = NUM_BINS, 0.0, 0.0
    return Cut(bin=b, threshold=bin_score(b) if b < NUM_BINS else 1.0, estimated_precision=precision,
               estimated_recall=recall, estimated_math_share=share, estimated_math_pages=math_pages,
               above=a[b] if b <= NUM_BINS else 0, positive_evidence=positive_evidence, positive_pages=n_pos,
               negative_pages=n_neg)


def evidence_floors(negatives: Mapping[int, int], markup_quantile: float, renderer_quantile: float) -> tuple[int, int]:
    """The bins of the markup floor and of the renderer floor: the ``markup_quantile`` and the
    ``renderer_quantile`` of the negatives' scores. The renderer floor is never below the markup
    floor (a renderer without formulas is weaker evidence than formulas); a ``renderer_quantile``
    of 1 or more turns it off, and no negatives put both floors above every bin.

    >>> negatives = {100: 1, 200: 1, 300: 1, 400: 1}
    >>> evidence_floors(negatives, 0.5, 0.75), evidence_floors(negatives, 0.5, 0.25), evidence_floors(negatives, 0.5, 1.0)
    ((300, 400), (300, 300), (300, 1200))
    >>> evidence_floors({}, 0.5, 0.75)
    (1200, 1200)
    """
    if not sum(negatives.values()):
        return NUM_BINS, NUM_BINS
    markup = quantile_bin(negatives, markup_quantile)
    renderer = NUM_BINS if renderer_quantile >= 1 else max(markup, quantile_bin(negatives, renderer_quantile))
    return markup, renderer


def quantile_bin(hist: Mapping[int, int], q: float) -> int:
    """The bin below which a share ``q`` of the histogram's pages lie (NUM_BINS for an empty one)."""
    total = sum(hist.values())
    if total <= 0:
        return NUM_BINS
    need, seen = q * total, 0
    for b in range(NUM_BINS):
        seen += hist.get(b, 0)
        if seen > need:
            return b
    return NUM_BINS - 1
