"""Calibration: does a model that says 90% confident get 90% right?

Written by hand because scikit-learn has no expected calibration error and its `calibration_curve` drops the
per-bin counts that the error is weighted by; the binning itself is a few lines of numpy.
"""

from __future__ import annotations

import numpy as np


def reliability_bins(confidence, correct, bins: int = 10) -> list[dict]:
    """Equal-width confidence bins (lo, hi] over [0, 1], the first also holding 0: for each non-empty bin its
    bounds, example count, mean confidence and accuracy."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    index = np.digitize(confidence, edges[1:-1], right=True)  # right=True: a bin includes its upper edge
    out = []
    for b in range(bins):
        member = index == b
        if member.any():
            out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(member.sum()),
                        "confidence": float(confidence[member].mean()), "accuracy": float(correct[member].mean())})
    return out


def expected_calibration_error(confidence, correct, bins: int = 10) -> float:
    """Sum over bins of (share of examples in the bin) x |accuracy - mean confidence| (Guo et al., 2017)."""
    total = len(confidence)
    if total == 0:
        return 0.0
    return float(sum(b["n"] / total * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(
        confidence, correct, bins)))
