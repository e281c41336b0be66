import json
import math

import numpy as np
import pytest

from lmtune.evaluation.classification import best_threshold, multi_label_metrics, single_label_metrics


def _one_hot_probs(preds: list[int], k: int, top: float = 0.6) -> np.ndarray:
    """Rows whose arg-max is `preds`, the remaining mass spread evenly over the other classes."""
    probs = np.full((len(preds), k), (1 - top) / (k - 1))
    probs[np.arange(len(preds)), preds] = top
    return probs


def test_three_class_hand_worked():
    # gold  = a a b b c c
    # pred  = a b b b c a
    # confusion (rows gold, cols pred):  a: [1 1 0]   b: [0 2 0]   c: [1 0 1]
    # accuracy = 4/6
    # a: P = 1/2 (pred a twice, once right), R = 1/2, F1 = 1/2
    # b: P = 2/3 (pred b three times, twice right), R = 2/2, F1 = 2*(2/3)/(5/3) = 4/5
    # c: P = 1/1, R = 1/2, F1 = 2/3
    # macro F1 = (1/2 + 4/5 + 2/3) / 3 = 59/90; micro F1 = accuracy for one-of-k = 2/3
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = _one_hot_probs([0, 1, 1, 1, 2, 0], 3)
    m = single_label_metrics(probs, labels, ["a", "b", "c"])

    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1_macro"] == pytest.approx(59 / 90)
    assert m["f1_micro"] == pytest.approx(2 / 3)
    assert m["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # every class has support 2, so weighted equals macro here
    assert m["f1_weighted"] == pytest.approx(59 / 90)
    assert m["confusion_matrix"] == {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 1]]}
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})


def test_binary_auc_hand_worked():
    # positives score 0.35 and 0.8, negatives 0.1 and 0.4. Of the 4 (positive, negative) pairs the positive
    # ranks higher in 3 (only 0.35 < 0.4 loses), so AUC = 3/4.
    labels = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.column_stack([1 - p1, p1])
    m = single_label_metrics(probs, labels, ["neg", "pos"])
    assert m["roc_auc"] == pytest.approx(0.75)


def test_log_loss_hand_worked():
    # the gold class gets 0.5 and 0.25: loss = -(ln 0.5 + ln 0.25) / 2 = 1.5 ln 2
    labels = np.array([0, 1])
    probs = np.array([[0.5, 0.5], [0.75, 0.25]])
    m = single_label_metrics(probs, labels, ["neg", "pos"])
    assert m["log_loss"] == pytest.approx(1.5 * math.log(2))


def test_multiclass_auc_perfect_ranking():
    labels = np.array([0, 1, 2, 0, 1, 2])
    probs = _one_hot_probs(labels.tolist(), 3, top=0.8)
    assert single_label_metrics(probs, labels, ["a", "b", "c"])["roc_auc"] == pytest.approx(1.0)


def test_class_missing_from_gold_does_not_raise():
    labels = np.array([0, 1, 0, 1])
    probs = _one_hot_probs([0, 1, 2, 1], 3)
    m = single_label_metrics(probs, labels, ["a", "b", "c"])

    assert m["roc_auc"] is None
    assert math.isfinite(m["log_loss"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"]["matrix"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]


def test_binary_with_one_gold_class_has_no_auc():
    labels = np.array([1, 1, 1])
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    m = single_label_metrics(probs, labels, ["neg", "pos"])
    assert m["roc_auc"] is None
    assert math.isfinite(m["log_loss"])


def test_single_label_result_is_plain_json():
    labels = np.array([0, 1, 2, 2])
    probs = _one_hot_probs([0, 1, 2, 1], 3)
    m = single_label_metrics(probs, labels, ["a", "b", "c"])
    # a round trip through json keeps everything, so no numpy scalars or arrays slipped through
    assert json.loads(json.dumps(m)) == m


# Multi-label case shared by the tests below, threshold 0.5:
#   gold          pred (score >= 0.5)
#   1 0 1         1 0 1     exact
#   0 1 0         0 1 1     one extra (col 2)
#   1 1 0         1 0 0     one missed (col 1)
#   0 0 1         0 0 1     exact
ML_GOLD = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
ML_PROBS = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.6], [0.95, 0.4, 0.3], [0.1, 0.2, 0.5]])


def test_multi_label_hand_worked():
    # subset accuracy = 2 exact rows / 4 = 1/2; hamming loss = 2 wrong cells / 12 = 1/6
    # micro: TP = 5, FP = 1, FN = 1 -> P = R = F1 = 5/6
    # col 0 perfect (F1 1); col 1 P = 1, R = 1/2, F1 = 2/3; col 2 P = 2/3, R = 1, F1 = 4/5
    # macro F1 = (1 + 2/3 + 4/5) / 3 = 37/45
    m = multi_label_metrics(ML_PROBS, ML_GOLD, ["x", "y", "z"], threshold=0.5)

    assert m["n"] == 4
    assert m["threshold"] == 0.5
    assert m["subset_accuracy"] == pytest.approx(0.5)
    assert m["hamming_loss"] == pytest.approx(1 / 6)
    assert m["f1_micro"] == pytest.approx(5 / 6)
    assert m["precision_micro"] == pytest.approx(5 / 6)
    assert m["f1_macro"] == pytest.approx(37 / 45)
    assert m["per_class"]["y"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["z"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    for key in ("f1_weighted", "f1_samples", "recall_samples", "precision_weighted"):
        assert 0.0 <= m[key] <= 1.0
    assert json.loads(json.dumps(m)) == m


def test_multi_label_auc_skips_constant_classes():
    # column 2 is always positive in gold, so only columns 0 and 1 count; both rank perfectly
    gold = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]])
    probs = np.array([[0.9, 0.1, 0.5], [0.2, 0.7, 0.5], [0.8, 0.6, 0.5], [0.1, 0.3, 0.5]])
    assert multi_label_metrics(probs, gold, ["x", "y", "z"], 0.5)["roc_auc"] == pytest.approx(1.0)


def test_multi_label_auc_none_when_no_class_defined():
    gold = np.array([[1, 0], [1, 0]])
    probs = np.array([[0.9, 0.1], [0.6, 0.2]])
    assert multi_label_metrics(probs, gold, ["x", "y"], 0.5)["roc_auc"] is None


def test_best_threshold_finds_the_gap():
    # positives score 0.25 and 0.3, negatives at most 0.2: only thresholds in (0.2, 0.25] separate them,
    # and 0.25 is the one grid point there
    gold = np.array([[1], [1], [0], [0], [0]])
    probs = np.array([[0.25], [0.3], [0.1], [0.15], [0.2]])
    assert best_threshold(probs, gold) == pytest.approx(0.25)


def test_best_threshold_prefers_half_on_ties():
    # every threshold in (0.3, 0.7] is perfect; 0.5 is among them
    gold = np.array([[1, 0], [0, 1]])
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert best_threshold(probs, gold) == pytest.approx(0.5)


def test_best_threshold_custom_grid():
    gold = np.array([[1], [1], [0], [0], [0]])
    probs = np.array([[0.25], [0.3], [0.1], [0.15], [0.2]])
    assert best_threshold(probs, gold, grid=[0.1, 0.22, 0.9]) == pytest.approx(0.22)
