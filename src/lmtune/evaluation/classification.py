"""Classification metrics computed with scikit-learn, returned as JSON-ready plain Python values.

The results go straight into reports and `metrics.json`, so every number is a built-in `float`/`int` and
every metric that is undefined on the given data is `None` rather than an exception: an evaluation run must
not die at the end of training because the test split happened to miss a class.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

_AVERAGES_SINGLE = ("macro", "micro", "weighted")
MATRIX_LIMIT = 50  # classes up to which the full confusion matrix is kept; beyond, the most frequent confusions
TOP_CONFUSIONS = 20
_AVERAGES_MULTI = ("macro", "micro", "weighted", "samples")
# Default grid for `best_threshold`: 0.05 .. 0.95, rounded so a report says 0.15, not 0.15000000000000002.
_DEFAULT_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


def single_label_metrics(probs: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """Metrics for one-of-k classification.

    `probs` is (n, k) with rows summing to 1; `labels` holds the gold class ids (0..k-1). The prediction is
    the arg-max class. Classes absent from the gold labels still get a `per_class` entry (zeros) and a row
    and column in the confusion matrix, so reports from different splits line up.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=int)
    k = len(label_names)
    class_ids = list(range(k))
    preds = probs.argmax(axis=1)

    result: dict[str, Any] = {"n": int(len(labels)), "accuracy": float(accuracy_score(labels, preds))}
    for average in _AVERAGES_SINGLE:
        p, r, f, _ = precision_recall_fscore_support(
            labels, preds, labels=class_ids, average=average, zero_division=0
        )
        result[f"precision_{average}"] = float(p)
        result[f"recall_{average}"] = float(r)
        result[f"f1_{average}"] = float(f)
    result["per_class"] = _per_class(labels, preds, class_ids, label_names)
    if k <= MATRIX_LIMIT:
        result["confusion_matrix"] = {
            "labels": list(label_names),
            "matrix": confusion_matrix(labels, preds, labels=class_ids).tolist(),
        }
    else:  # a 10,000-class matrix is 10^8 cells: 300 MB in every log line that carries the metrics
        pairs = Counter((g, p) for g, p in zip(labels.tolist(), preds.tolist(), strict=True) if g != p)
        result["top_confusions"] = [{"gold": label_names[g], "predicted": label_names[p], "count": n}
                                    for (g, p), n in pairs.most_common(TOP_CONFUSIONS)]
    result["roc_auc"] = _single_label_auc(probs, labels, k)
    # log loss needs at least two classes to be defined; `labels=` keeps classes missing from gold from
    # shifting the probability columns.
    result["log_loss"] = float(log_loss(labels, probs, labels=class_ids)) if k >= 2 else None
    return result


def multi_label_metrics(
    probs: np.ndarray, labels: np.ndarray, label_names: list[str], threshold: float
) -> dict[str, Any]:
    """Metrics for multi-label classification: each of the k classes is an independent yes/no.

    `probs` are sigmoid scores (n, k); `labels` is a 0/1 matrix (n, k). A class is predicted when its score
    is >= `threshold`.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=int)
    class_ids = list(range(len(label_names)))
    preds = (probs >= threshold).astype(int)

    result: dict[str, Any] = {
        "n": int(len(labels)),
        "threshold": float(threshold),
        # On indicator matrices sklearn's accuracy is the exact-match (subset) ratio.
        "subset_accuracy": float(accuracy_score(labels, preds)),
        "hamming_loss": float(hamming_loss(labels, preds)),
    }
    for average in _AVERAGES_MULTI:
        p, r, f, _ = precision_recall_fscore_support(labels, preds, average=average, zero_division=0)
        result[f"precision_{average}"] = float(p)
        result[f"recall_{average}"] = float(r)
        result[f"f1_{average}"] = float(f)
    result["per_class"] = _per_class(labels, preds, class_ids, label_names)
    result["roc_auc"] = _multi_label_auc(probs, labels)
    return result


def best_threshold(probs: np.ndarray, labels: np.ndarray, grid: list[float] | None = None) -> float:
    """The multi-label decision threshold on `grid` that maximises micro-F1 on (validation) data.

    Among equally good thresholds the one nearest 0.5 wins, so tuning only moves away from the usual
    default when that actually helps.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=int)
    candidates = list(_DEFAULT_GRID if grid is None else grid)
    scores = [
        f1_score(labels, (probs >= t).astype(int), average="micro", zero_division=0) for t in candidates
    ]
    best = max(scores)
    ties = [t for t, s in zip(candidates, scores, strict=True) if s == best]
    return float(min(ties, key=lambda t: abs(t - 0.5)))


def _per_class(
    labels: np.ndarray, preds: np.ndarray, class_ids: list[int], label_names: list[str]
) -> dict[str, dict[str, float | int]]:
    p, r, f, support = precision_recall_fscore_support(
        labels, preds, labels=class_ids, average=None, zero_division=0
    )
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
        for i, name in enumerate(label_names)
    }


def _single_label_auc(probs: np.ndarray, labels: np.ndarray, k: int) -> float | None:
    # AUC needs every class among the gold labels: a class with no positives has no ROC curve.
    if k < 2 or len(np.unique(labels)) < k:
        return None
    if k == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(k))))


def _multi_label_auc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    # Only classes with both a positive and a negative gold example have a defined AUC.
    defined = [j for j in range(labels.shape[1]) if 0 < labels[:, j].sum() < len(labels)]
    if not defined:
        return None
    return float(roc_auc_score(labels[:, defined], probs[:, defined], average="macro"))


def record_correct(record: dict) -> bool:
    """Whether a prediction record (predictions.jsonl) got its gold label(s) right."""
    if "labels" in record:
        return sorted(record["labels"]) == sorted(record["gold"])
    return record["label"] == record["gold"]
