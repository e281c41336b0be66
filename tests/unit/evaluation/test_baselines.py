"""TF-IDF + logistic regression, majority-class and from-scratch BiLSTM baselines, fitted on the splits the task
itself loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmtune.config import build_config
from lmtune.evaluation.baselines import baseline_metrics, run_baselines
from lmtune.tasks import new_task


def write_csv(path: Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    return str(path)


def separable_rows(n: int = 80, positive_share: float = 0.5) -> list[tuple[str, str]]:
    n_pos = round(n * positive_share)
    return [(f"the {'film' if i % 2 else 'food'} was {'wonderful' if i < n_pos else 'dreadful'} {i}",
             "pos" if i < n_pos else "neg") for i in range(n)]


def loaded(csv: str, **task):
    """The task and splits exactly as training gets them (same loader, same seed), the BiLSTM asked for."""
    cfg = build_config({"data": {"train": csv}, "task": {"lstm_baseline": True, **task}, "train": {"seed": 3}})
    task = new_task(cfg)
    splits, _ = task.load(cfg)
    return task, splits


def model_records(task, rows, correct: bool = True) -> list[dict]:
    """Prediction records as the fine-tuned model writes them, right or wrong on every row."""
    other = {task.labels[0]: task.labels[1], task.labels[1]: task.labels[0]}
    return [{"label": y if correct else other[y], "gold": y} for y in rows["label"]]


def test_tfidf_separates_a_separable_dataset_and_majority_scores_the_majority_share(tmp_path):
    task, splits = loaded(write_csv(tmp_path / "d.csv", separable_rows(100, positive_share=0.7)))
    result = baseline_metrics(task, splits, model_records(task, splits["test"]))
    for split in ("validation", "test"):
        assert result["tfidf_logreg"][split]["accuracy"] == 1.0
        assert result["bilstm"][split]["accuracy"] == 1.0
        assert set(result["bilstm"][split]) == set(result["tfidf_logreg"][split])
        share = (splits[split]["label"] == "pos").mean()
        assert share > 0.5
        assert result["majority"][split]["accuracy"] == pytest.approx(share)
        assert set(result["majority"][split]) >= {"n", "accuracy", "f1_macro"}  # the model's own metric keys
        assert "per_class" not in result["majority"][split]


def test_lift_compares_the_model_with_tfidf_on_the_same_rows(tmp_path):
    task, splits = loaded(write_csv(tmp_path / "d.csv", separable_rows()))
    tie = baseline_metrics(task, splits, model_records(task, splits["test"]))["lift"]
    assert tie["split"] == "test" and tie["metric"] == "accuracy"
    assert (tie["lift"], tie["low"], tie["high"]) == (0.0, 0.0, 0.0)
    worse = baseline_metrics(task, splits, model_records(task, splits["test"], correct=False))
    assert worse["lift"]["lift"] == -1.0 and worse["lift"]["high"] == -1.0
    assert worse["lift_bilstm"] == {**worse["lift"], "over": "bilstm"}  # the BiLSTM also gets every row right


def test_characters_carry_text_written_without_spaces(tmp_path):
    """Unsegmented Chinese is one 'word' per sentence: only the character n-grams can separate it."""
    rows = [(f"这部电影{i}号{'很好看' if i % 2 else '很难看'}", "好" if i % 2 else "差") for i in range(60)]
    task, splits = loaded(write_csv(tmp_path / "zh.csv", rows))
    result = baseline_metrics(task, splits, [])
    assert result["tfidf_logreg"]["test"]["accuracy"] == 1.0
    assert result["bilstm"]["test"]["accuracy"] == 1.0  # it reads Chinese a character at a time
    assert "lift" not in result and "lift_bilstm" not in result  # no model records to compare with


def test_multi_label_baselines_use_the_multi_label_metrics(tmp_path):
    rows = [(f"{'red' if i % 2 else 'blue'} {'big' if i % 3 else 'small'} thing {i}",
             "|".join(x for x, on in (("red", i % 2), ("big", i % 3)) if on) or "none") for i in range(90)]
    csv = write_csv(tmp_path / "ml.csv", rows)
    cfg = build_config({"data": {"train": csv, "label_separator": "|"}, "task": {"lstm_baseline": True},
                        "train": {"seed": 3}})
    task = new_task(cfg)
    splits, _ = task.load(cfg)
    records = [{"labels": y, "gold": y} for y in splits["test"]["label"]]
    result = baseline_metrics(task, splits, records)
    assert result["tfidf_logreg"]["test"]["subset_accuracy"] == 1.0
    assert 0 <= result["majority"]["test"]["subset_accuracy"] < 1
    assert result["lift"]["metric"] == "subset_accuracy" and result["lift"]["lift"] == 0.0
    assert result["lift_bilstm"]["metric"] == "subset_accuracy"
    assert set(result["bilstm"]["test"]) == set(result["tfidf_logreg"]["test"])


def test_run_baselines_only_when_asked_and_for_classification(tmp_path):
    csv = write_csv(tmp_path / "d.csv", separable_rows())
    task, splits = loaded(csv)
    assert set(run_baselines(task, splits, [])["baselines"]) == {"tfidf_logreg", "majority", "bilstm"}
    task.cfg = task.cfg.model_copy(update={"lstm_baseline": False})
    assert set(run_baselines(task, splits, [])["baselines"]) == {"tfidf_logreg", "majority"}
    off, splits = loaded(csv, baselines=False)
    assert run_baselines(off, splits, []) == {}
    task.has_baselines = False  # the same tables under a task without baselines: nothing to compare
    assert run_baselines(task, splits, []) == {}


def test_sentence_pairs_reach_every_baseline(tmp_path):
    rows = [(f"is the {'film' if i % 2 else 'food'} good {i}", f"{'yes it is' if i % 3 else 'no not at all'}",
             "agree" if i % 3 else "disagree") for i in range(60)]
    csv = tmp_path / "pairs.csv"
    csv.write_text("a,b,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows), encoding="utf-8")
    cfg = build_config({"data": {"train": str(csv), "text_column": "a", "text_pair_column": "b"},
                        "task": {"lstm_baseline": True}, "train": {"seed": 3}})
    task = new_task(cfg)
    splits, _ = task.load(cfg)
    assert task.pair
    result = baseline_metrics(task, splits, model_records(task, splits["test"]))
    assert result["bilstm"]["test"]["accuracy"] == result["tfidf_logreg"]["test"]["accuracy"] == 1.0
