"""A bootstrap 95% interval for a task's headline metric, recomputed from the run's prediction records.

Each task's metric is reduced to per-example numbers whose resampled statistic equals the metric itself
(accuracy: correct or not; micro-F1: true/false positive and false negative counts), so the interval is
about the very number in metrics.json. Tasks or records this does not know give None.
"""

from __future__ import annotations

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from lmtune.evaluation.bootstrap import bootstrap_ci


def metric_interval(task: str, records: list[dict], n: int = 1000, seed: int = 0) -> dict | None:
    """{"metric", "value", "low", "high", "n"} or None (unknown task, too few records, missing fields)."""
    if len(records) < 2:
        return None
    try:
        found = _per_example(task, records)
    except (KeyError, TypeError, ValueError):  # records of another shape than this task's: no interval
        return None
    if found is None:
        return None
    metric, data, statistic = found
    low, high = bootstrap_ci(data, statistic, n=n, seed=seed)
    return {"metric": metric, "value": float(statistic(*data)), "low": low, "high": high, "n": len(records)}


def _per_example(task: str, records: list[dict]):
    if task == "classification" and "label" in records[0]:
        correct = np.array([r["label"] == r["gold"] for r in records], dtype=float)
        return "accuracy", (correct,), np.mean
    if task == "classification" and "labels" in records[0]:
        counts = np.array([_set_counts(set(r["labels"]), set(r["gold"])) for r in records], dtype=float)
        return "f1_micro", tuple(counts.T), _micro_f1
    if task == "token-classification":
        counts = np.array([_set_counts(_entities(r["tags"]), _entities(r["gold"])) for r in records], dtype=float)
        return "overall_f1", tuple(counts.T), _micro_f1
    if task == "regression" and "score" in records[0]:
        pairs = np.array([[float(r["score"]), float(r["gold"])] for r in records])
        return "pearson", (pairs[:, 0], pairs[:, 1]), _pearson
    if task == "question-answering":
        return "f1", (np.array([float(r["f1"]) for r in records]),), np.mean
    return None


def _set_counts(predicted: set, gold: set) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one example; resampled as three paired arrays
    (scipy's bootstrap takes one value per example and array)."""
    return len(predicted & gold), len(predicted - gold), len(gold - predicted)


def _entities(tags: list[str]) -> set:
    return set(get_entities(list(tags)))


def _micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def _pearson(predicted: np.ndarray, gold: np.ndarray) -> float:
    # A resample with a constant side has no correlation; 0 matches how the regression metrics score it.
    if predicted.std() == 0 or gold.std() == 0:
        return 0.0
    return float(np.corrcoef(predicted, gold)[0, 1])
