"""A bootstrap 95% interval for a task's headline metric, recomputed from the run's prediction records.

Each task reduces its metric to per-example numbers whose resampled statistic equals the metric itself
(accuracy: correct or not; micro-F1: true/false positive and false negative counts), so the interval is
about the very number in metrics.json. The reducers are here; a task names the one that fits its records
(`Task.interval_data`). Tasks without one, or records of another shape, give None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from lmtune.evaluation.bootstrap import bootstrap_ci


class PerExample(NamedTuple):
    metric: str
    data: tuple[np.ndarray, ...]  # paired arrays, one value per example each
    statistic: Callable[..., float]  # of the arrays: the metric


def metric_interval(per_example: Callable[[list[dict]], PerExample | None], records: list[dict], n: int = 1000,
                    seed: int = 0) -> dict | None:
    """{"metric", "value", "low", "high", "n"} or None (no statistic, too few records, missing fields)."""
    if len(records) < 2:
        return None
    try:
        found = per_example(records)
    except (KeyError, TypeError, ValueError):  # records of another shape than this task's: no interval
        return None
    if found is None:
        return None
    low, high = bootstrap_ci(found.data, found.statistic, n=n, seed=seed)
    return {"metric": found.metric, "value": float(found.statistic(*found.data)), "low": low, "high": high,
            "n": len(records)}


def accuracy(records: list[dict]) -> PerExample:
    """Single-label records: {"label", "gold"}."""
    correct = np.array([r["label"] == r["gold"] for r in records], dtype=float)
    return PerExample("accuracy", (correct,), np.mean)


def micro_f1(metric: str, predicted: list[set], gold: list[set]) -> PerExample:
    """Micro-F1 over each example's predicted and gold sets (labels of a multi-label row, entities of a sentence)."""
    counts = np.array([_set_counts(p, g) for p, g in zip(predicted, gold, strict=True)], dtype=float)
    return PerExample(metric, tuple(counts.T), _micro_f1)


def entities(tags: list[str]) -> set:
    return set(get_entities(list(tags)))


def pearson(records: list[dict]) -> PerExample:
    """One-target regression records: {"score", "gold"}."""
    pairs = np.array([[float(r["score"]), float(r["gold"])] for r in records])
    return PerExample("pearson", (pairs[:, 0], pairs[:, 1]), _pearson)


def mean_of(metric: str, records: list[dict]) -> PerExample:
    """A metric that is the mean of a per-record value (question answering's f1)."""
    return PerExample(metric, (np.array([float(r[metric]) for r in records]),), np.mean)


def _set_counts(predicted: set, gold: set) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one example; resampled as three paired arrays
    (scipy's bootstrap takes one value per example and array)."""
    return len(predicted & gold), len(predicted - gold), len(gold - predicted)


def _micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def _pearson(predicted: np.ndarray, gold: np.ndarray) -> float:
    # A resample with a constant side has no correlation; 0 matches how the regression metrics score it.
    if predicted.std() == 0 or gold.std() == 0:
        return 0.0
    return float(np.corrcoef(predicted, gold)[0, 1])
