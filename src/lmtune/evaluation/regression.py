"""Regression metrics: errors in the targets' own units and rank/linear agreement, per target and averaged."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error

KEYS = ("mse", "mae", "rmse", "pearson", "spearman")


def regression_metrics(pred: np.ndarray, gold: np.ndarray, names: list[str]) -> dict:
    """`pred` and `gold` are (rows, targets). One target: its metrics. Several: their means under the same
    keys, plus each target's own metrics under "targets"."""
    per = {name: target_metrics(pred[:, i], gold[:, i]) for i, name in enumerate(names)}
    if len(names) == 1:
        return per[names[0]]
    return {**{k: round(float(np.mean([m[k] for m in per.values()])), 6) for k in KEYS}, "targets": per}


def target_metrics(pred: np.ndarray, gold: np.ndarray) -> dict:
    mse = float(mean_squared_error(gold, pred))
    return {"mse": round(mse, 6), "mae": round(float(mean_absolute_error(gold, pred)), 6),
            "rmse": round(math.sqrt(mse), 6), "pearson": round(_correlation(pearsonr, pred, gold), 6),
            "spearman": round(_correlation(spearmanr, pred, gold), 6)}


def _correlation(fn, pred: np.ndarray, gold: np.ndarray) -> float:
    # A constant vector (an untrained head, a one-valued evaluation set) has no defined correlation; it
    # counts as 0 (no measurable relation) so that best-model selection never compares against NaN.
    if len(pred) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        value = float(fn(pred, gold).statistic)
    return 0.0 if math.isnan(value) else value
