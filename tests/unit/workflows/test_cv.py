"""K-fold cross-validation (`lmtune.recipe.cross_validate`, `lmtune train --cv K`) on the tiny random BERT:
cv.json and its summary, out-of-fold predictions, stratified and reproducible folds, CLI errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import lmtune

from lmtune.api import cross_validate
from lmtune.crossval import make_folds

pytestmark = pytest.mark.usefixtures("one_thread")

GOOD, BAD, NOUNS = ["good", "great", "love"], ["bad", "awful", "hate"], ["film", "food", "service"]


def write_data(path: Path, n_good: int = 27, n_bad: int = 18) -> str:
    """Uneven classes, so stratification has something to keep."""
    rows = [(f"the {NOUNS[i % 3]} {GOOD[i % 3]} {i}", "good") for i in range(n_good)]
    rows += [(f"the {NOUNS[i % 3]} {BAD[i % 3]} {i}", "bad") for i in range(n_bad)]
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    return str(path)


def config(tiny_bert: str, train_file: str, out: Path, name: str = "cv") -> dict:
    return {"name": name, "output_dir": str(out), "model": {"name": tiny_bert},
            "data": {"train": train_file, "max_length": 32},
            "train": {"max_steps": 2, "batch_size": 8, "eval_batch_size": 64, "seed": 3},
            "task": {"baselines": False}}


@pytest.fixture(scope="module")
def cv_run(tiny_bert, tmp_path_factory) -> tuple[dict, Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("cv")
    train_file = write_data(tmp / "data.csv")
    result = cross_validate(config(tiny_bert, train_file, tmp / "runs"), folds=3)
    return result, tmp / "runs" / "cv", pd.read_csv(train_file)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_cv_json_has_every_fold_and_its_mean_and_sample_std(cv_run):
    result, run_dir, data = cv_run
    saved = json.loads((run_dir / "cv.json").read_text(encoding="utf-8"))
    assert saved == result
    assert result["folds"] == 3 and [f["fold"] for f in result["per_fold"]] == [1, 2, 3]
    assert result["rows"] == len(data) == sum(f["validation_rows"] for f in result["per_fold"])
    for fold in result["per_fold"]:
        assert (Path(fold["run"]) / "model" / "lmtune.json").exists()
        assert fold["train_rows"] + fold["validation_rows"] == len(data)
    assert "accuracy" in result["summary"] and "f1_macro" in result["summary"]
    for key, stat in result["summary"].items():
        values = [f["metrics"][key] for f in result["per_fold"]]
        assert stat["mean"] == pytest.approx(np.mean(values))
        assert stat["std"] == pytest.approx(np.std(values, ddof=1))
    md = (run_dir / "cv.md").read_text(encoding="utf-8")
    assert "| accuracy |" in md and "±" in md


def test_out_of_fold_predictions_cover_every_row_once(cv_run):
    result, run_dir, data = cv_run
    oof = read_jsonl(run_dir / "oof_predictions.jsonl")
    rows = [r["row"] for r in oof]
    assert sorted(rows) == sorted(set(rows)) and len(rows) == len(data)
    by_fold = {i: {r["row"] for r in oof if r["fold"] == i} for i in (1, 2, 3)}
    assert sum(len(s) for s in by_fold.values()) == len(set().union(*by_fold.values()))  # no row in two folds
    for fold in result["per_fold"]:
        assert len(by_fold[fold["fold"]]) == fold["validation_rows"]
        # each fold's held-out rows are exactly what its run validated on
        assert {r["row"] for r in read_jsonl(Path(fold["run"]) / "predictions.jsonl")} == by_fold[fold["fold"]]
    gold = dict(zip(range(1, len(data) + 1), data["label"], strict=True))  # rows are 1-based data rows
    assert all(r["gold"] == gold[r["row"]] for r in oof)
    assert all(r["label"] in ("good", "bad") for r in oof)


def test_folds_are_stratified(cv_run):
    _, run_dir, _ = cv_run
    oof = read_jsonl(run_dir / "oof_predictions.jsonl")
    for label in ("good", "bad"):
        counts = Counter(r["fold"] for r in oof if r["gold"] == label)
        assert len(counts) == 3 and max(counts.values()) - min(counts.values()) <= 1


def test_same_seed_same_folds_and_numeric_labels_fold_at_random():
    rows = pd.DataFrame({"label": ["a"] * 20 + ["b"] * 10})

    def held(seed: int, frame: pd.DataFrame = rows) -> list[list[int]]:
        return [sorted(h.tolist()) for _, h in make_folds(frame, 3, seed)]

    assert held(7) == held(7)
    assert held(7) != held(8)
    for label in ("a", "b"):
        counts = [sum(rows["label"].iloc[fold] == label) for fold in held(7)]
        assert max(counts) - min(counts) <= 1
    scores = pd.DataFrame({"label": [float(i) for i in range(30)]})  # regression: plain KFold, still a partition
    assert sorted(i for fold in held(7, scores) for i in fold) == list(range(30))


def test_cli_cv_prints_mean_and_std(tiny_bert, tmp_path, monkeypatch, capsys):
    train_file = write_data(tmp_path / "data.csv", n_good=12, n_bad=12)
    code, out, err = lmtune(monkeypatch, capsys, "train", "--cv", "2", "--data", train_file, "--model", tiny_bert,
                            "--output-dir", str(tmp_path / "runs"), "--name", "c", "--max-steps", "2",
                            "--set", "data.max_length=32", "--set", "task.baselines=false")
    assert code == 0, err
    assert "2-fold cross-validation" in out and "accuracy" in out and "±" in out
    result = json.loads((tmp_path / "runs" / "c" / "cv.json").read_text(encoding="utf-8"))
    assert result["folds"] == 2 and len(result["per_fold"]) == 2


def test_cv_with_a_validation_file_is_a_config_error(tmp_path, monkeypatch, capsys):
    train_file = write_data(tmp_path / "data.csv")
    code, _, err = lmtune(monkeypatch, capsys, "train", "--cv", "3", "--data", train_file, "--validation", train_file,
                          "--output-dir", str(tmp_path / "runs"))
    assert code == 2
    assert "cross-validation" in err and "validation" in err
    assert not (tmp_path / "runs").exists()
