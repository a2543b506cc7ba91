"""ROC-AUC and precision/recall against hand-computed values."""
import pytest

from classifiers.metrics import binary_metrics, roc_auc


def test_roc_auc_hand_computed():
    # Positives 0.35, 0.8; negatives 0.1, 0.4. Pairs won by the positive: (0.35>0.1), (0.8>0.1),
    # (0.8>0.4) = 3 of 4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert roc_auc([1, 0], [0.1, 0.9]) == 0.0


def test_roc_auc_ties_count_one_half():
    # One positive and two negatives all at 0.5 plus a negative at 0.2: 1 win + 2 ties = 2 of 3.
    assert roc_auc([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.2]) == pytest.approx(2 / 3)


def test_roc_auc_undefined_for_one_class():
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    with pytest.raises(ValueError):
        roc_auc([1, 0], [0.5])


def test_precision_recall_f1_at_threshold():
    # scores >= 0.5 predicted math: TP = 2 (0.9, 0.6), FP = 1 (0.7), FN = 1 (0.2)
    m = binary_metrics([1, 1, 1, 0, 0], [0.9, 0.6, 0.2, 0.7, 0.1])
    assert (m.true_positives, m.false_positives, m.false_negatives) == (2, 1, 1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
    # pairs (positive, negative): 0.9 beats both, 0.6 beats 0.1 only, 0.2 beats 0.1 only: 4 of 6
    assert m.roc_auc == pytest.approx(4 / 6)
    empty = binary_metrics([0, 0], [0.9, 0.1])
    assert empty.precision == 0.0 and empty.recall == 0.0 and empty.roc_auc is None
