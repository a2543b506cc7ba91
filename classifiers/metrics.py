"""Validation metrics of a binary classifier: precision, recall, F1 at a threshold, and ROC-AUC.

Pure functions over plain sequences (no scikit-learn dependency): labels are 1 for math and
0 for other, scores are the classifier's probability of math.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BinaryMetrics:
    """Counts and rates on a validation set at one decision threshold."""

    threshold: float
    positives: int
    negatives: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    roc_auc: float | None  # None when only one class is present

    def to_dict(self) -> dict:
        return asdict(self)


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting one half (the Mann-Whitney U statistic over positives x negatives).

    Computed from average ranks in O(n log n). Returns None when either class is empty.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum_pos = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1  # ranks are 1-based; a tie shares the mean rank
        rank_sum_pos += average_rank * sum(1 for k in order[i : j + 1] if labels[k])
        i = j + 1
    u = rank_sum_pos - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def binary_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> BinaryMetrics:
    """Precision, recall and F1 of "score >= threshold means math", plus ROC-AUC.

    A rate whose denominator is zero is reported as 0.0.
    """
    tp = sum(1 for y, s in zip(labels, scores) if y and s >= threshold)
    fp = sum(1 for y, s in zip(labels, scores) if not y and s >= threshold)
    n_pos = sum(1 for y in labels if y)
    fn = n_pos - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_pos if n_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BinaryMetrics(
        threshold=threshold,
        positives=n_pos,
        negatives=len(labels) - n_pos,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        precision=precision,
        recall=recall,
        f1=f1,
        roc_auc=roc_auc(labels, scores),
    )
