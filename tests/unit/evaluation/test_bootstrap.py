"""Bootstrap confidence intervals: the generic percentile interval, the paired lift, and the headline-metric
interval recomputed from prediction records (which must agree with the task's own metric)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score

from lmtune.evaluation.bootstrap import bootstrap_ci, paired_lift_ci
from lmtune.evaluation.intervals import metric_interval
from lmtune.evaluation.tagging import tagging_metrics
from lmtune.tasks import task_type


def interval(task: str, records: list[dict]) -> dict | None:
    """The interval of a run of `task`, as the report finds it: through the statistic the task declares."""
    return metric_interval(task_type(task).interval_data, records)


def proportion(n: int, share: float) -> np.ndarray:
    ones = round(n * share)
    return np.array([1.0] * ones + [0.0] * (n - ones))


def test_all_correct_gives_a_zero_width_interval_at_one():
    assert bootstrap_ci(np.ones(50)) == (1.0, 1.0)


def test_interval_contains_the_proportion_and_narrows_with_more_examples():
    low_small, high_small = bootstrap_ci(proportion(100, 0.7))
    low_large, high_large = bootstrap_ci(proportion(2000, 0.7))
    assert low_small < 0.7 < high_small
    assert low_large < 0.7 < high_large
    assert high_large - low_large < (high_small - low_small) / 2  # width shrinks like 1/sqrt(n)


def test_same_seed_same_interval_and_alpha_widens_it():
    values = proportion(200, 0.6)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    low95, high95 = bootstrap_ci(values, alpha=0.05)
    low80, high80 = bootstrap_ci(values, alpha=0.2)
    assert low95 < low80 < high80 < high95


def test_pairs_are_resampled_together():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = x + rng.normal(scale=0.5, size=300)
    low, high = bootstrap_ci((x, y), lambda a, b: pearsonr(a, b).statistic)
    assert low < pearsonr(x, y).statistic < high
    assert low > 0.8  # resampling x and y separately would destroy the correlation


def test_lift_of_identical_models_is_zero():
    correct = proportion(200, 0.7)
    assert paired_lift_ci(correct, correct) == (0.0, 0.0, 0.0)


def test_lift_is_centred_on_zero_when_the_models_win_equally_often():
    a = np.array([1, 0] * 50 + [1] * 100, dtype=float)
    b = np.array([0, 1] * 50 + [1] * 100, dtype=float)
    lift, low, high = paired_lift_ci(a, b)
    assert lift == 0.0
    assert low < 0 < high
    assert abs(low + high) < 0.03


def test_paired_lift_detects_a_small_consistent_improvement():
    """B equals A except on 10 of 200 examples that only A gets right: a resample can never favour B, so the
    paired interval excludes 0, though each model alone has an interval several times wider than the lift."""
    a = proportion(200, 0.7)
    b = a.copy()
    b[:10] = 0.0
    lift, low, high = paired_lift_ci(a, b)
    assert lift == pytest.approx(0.05)
    assert 0 < low < 0.05 < high
    low_a, high_a = bootstrap_ci(a)
    assert high_a - low_a > 2 * 0.05


def test_lift_needs_the_same_examples():
    with pytest.raises(ValueError, match="same examples"):
        paired_lift_ci([1, 0, 1], [1, 0])


def test_classification_interval_is_about_accuracy():
    records = [{"label": "a", "gold": "a"}] * 30 + [{"label": "b", "gold": "a"}] * 10
    found = interval("classification", records)
    assert found["metric"] == "accuracy" and found["n"] == 40
    assert found["value"] == 0.75
    assert found["low"] < 0.75 < found["high"]


def test_multi_label_interval_value_is_micro_f1():
    gold = [["a"], ["a", "b"], ["b"], [], ["a"], ["b"]]
    predicted = [["a"], ["a"], ["a", "b"], ["b"], [], ["b"]]
    records = [{"labels": p, "gold": g} for p, g in zip(predicted, gold, strict=True)]
    found = interval("classification", records)
    matrix = [[[int(c in row) for c in "ab"] for row in rows] for rows in (gold, predicted)]
    assert found["metric"] == "f1_micro"
    assert found["value"] == pytest.approx(f1_score(*matrix, average="micro"))


def test_token_classification_interval_value_is_seqeval_overall_f1():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "B-PER"], ["O", "O"]]
    tags = [["B-PER", "I-PER", "O"], ["B-PER", "O", "B-PER"], ["B-LOC", "O"]]
    records = [{"gold": g, "tags": t} for g, t in zip(gold, tags, strict=True)]
    found = interval("token-classification", records)
    assert found["value"] == pytest.approx(tagging_metrics(gold, tags)["overall_f1"])


def test_regression_interval_value_is_pearson():
    rng = np.random.default_rng(1)
    gold = rng.normal(size=50)
    score = gold + rng.normal(size=50)
    records = [{"score": float(s), "gold": float(g)} for s, g in zip(score, gold, strict=True)]
    found = interval("regression", records)
    assert found["metric"] == "pearson"
    assert found["value"] == pytest.approx(pearsonr(score, gold).statistic)
    assert found["low"] < found["value"] < found["high"]


def test_no_interval_for_unknown_tasks_odd_records_or_too_few():
    assert interval("mlm", [{"x": 1}, {"x": 2}]) is None
    assert interval("summarization", [{"label": "a", "gold": "a"}] * 5) is None
    assert interval("classification", [{"text": "no labels"}] * 5) is None
    assert interval("classification", [{"label": "a", "gold": "a"}]) is None
