"""Percentile-bootstrap confidence intervals over evaluation examples (scipy.stats.bootstrap does the resampling).

An evaluation set is a sample: 0.91 accuracy on 200 examples and 0.91 on 20,000 are not the same claim, and a
lift of one model over another is only real when its interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import bootstrap


def bootstrap_ci(values_or_pairs: Sequence | np.ndarray | tuple, statistic: Callable = np.mean, n: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """(low, high) of the 1 - alpha percentile interval of `statistic` over examples drawn with replacement.

    `values_or_pairs` is one array (one value per example: `statistic(array)`) or a tuple of equal-length
    arrays resampled together, row by row (`statistic(a, b, ...)`), e.g. (predicted, gold) for a correlation.
    Needs at least two examples.
    """
    data = values_or_pairs if isinstance(values_or_pairs, tuple) else (values_or_pairs,)
    data = tuple(np.asarray(x) for x in data)
    # random_state takes a Generator in every scipy this package allows (its successor `rng` is 1.15+ only).
    result = bootstrap(data, statistic, n_resamples=n, confidence_level=1 - alpha, method="percentile",
                       paired=len(data) > 1, vectorized=False, random_state=np.random.default_rng(seed))
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def paired_lift_ci(correct_a: Sequence, correct_b: Sequence, n: int = 1000, seed: int = 0,
                   alpha: float = 0.05) -> tuple[float, float, float]:
    """(lift, low, high): accuracy of model A minus model B on the same examples, with a paired interval.

    Resampling examples (not each model's results separately) keeps the two models' answers on one example
    together, so the interval reflects how often they disagree rather than each model's own spread.
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired results must cover the same examples: {a.shape} vs {b.shape}")
    low, high = bootstrap_ci((a, b), lambda x, y: x.mean() - y.mean(), n=n, seed=seed, alpha=alpha)
    return float(a.mean() - b.mean()), low, high
