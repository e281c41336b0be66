"""Regression task: metrics against hand-worked values, target scaling, STS-B-shaped files, training on the
tiny random BERT, prediction and loading with transformers' pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

from lmtune.api import Predictor, train
from lmtune.config import build_config
from lmtune.errors import ConfigError, DataError
from lmtune.evaluation.regression import regression_metrics, target_metrics
from lmtune.tasks.regression import Regression


def test_metrics_match_hand_worked_example():
    # pred (1, 2, 3, 10) vs gold (1, 2, 3, 4):
    #   errors 0, 0, 0, 6 -> MSE 36/4 = 9, MAE 6/4 = 1.5, RMSE 3.
    #   Pearson: pred mean 4, deviations -3 -2 -1 6; gold mean 2.5, deviations -1.5 -0.5 0.5 1.5;
    #   sum of products 4.5 + 1 - 0.5 + 9 = 14; sums of squares 50 and 5; r = 14 / sqrt(250) = 0.885438.
    #   Spearman: both orders are 1 < 2 < 3 < 4, so the ranks agree exactly: rho = 1.
    m = target_metrics(np.array([1.0, 2, 3, 10]), np.array([1.0, 2, 3, 4]))
    assert m["mse"] == pytest.approx(9) and m["mae"] == pytest.approx(1.5) and m["rmse"] == pytest.approx(3)
    assert m["pearson"] == pytest.approx(14 / math.sqrt(250), abs=1e-6)
    assert m["spearman"] == pytest.approx(1.0)


def test_several_targets_are_averaged_and_kept_per_target():
    # target a: pred (1, 2, 3) vs gold (1, 3, 2): deviations (-1, 0, 1) and (-1, 1, 0): r = 1 / 2;
    #   squared errors 0, 1, 1 -> MSE 2/3. Target b is predicted exactly: r = 1, MSE 0.
    pred = np.array([[1.0, 5], [2, 6], [3, 7]])
    gold = np.array([[1.0, 5], [3, 6], [2, 7]])
    m = regression_metrics(pred, gold, ["a", "b"])
    assert m["targets"]["a"]["pearson"] == pytest.approx(0.5) and m["targets"]["b"]["pearson"] == pytest.approx(1)
    assert m["pearson"] == pytest.approx(0.75)
    assert m["mse"] == pytest.approx((2 / 3 + 0) / 2, abs=1e-6)


def test_constant_predictions_give_zero_correlation_not_nan():
    m = target_metrics(np.array([2.0, 2, 2]), np.array([1.0, 2, 3]))
    assert m["pearson"] == 0.0 and m["spearman"] == 0.0


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


STSB_LIKE = (
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.\n"
    "main-news\theadlines\t2013\t0002\t1.200\tHe said \"no\" twice.\tShe left.\textra\tcolumns\n"
    "main-forums\tdeft\t2014\t0003\t3.800\tA man plays a flute.\tA man plays a large flute.\n"
    "main-news\theadlines\t2013\t0004\t0.400\tThe cat sat.\tStocks fell.\n"
)


def stsb_config(path: str, **data) -> object:
    return build_config({"task": {"name": "regression"},
                         "data": {"train": path, "text_column": 5, "text_pair_column": 6, "label_column": 4,
                                  "validation_size": 0.25, "test_size": 0, **data}})


def test_stsb_like_headerless_file_with_extra_columns(tmp_path):
    cfg = stsb_config(write(tmp_path / "sts.tsv", STSB_LIKE), extra_fields="ignore")
    splits, report = Regression(cfg.task).load(cfg)
    rows = pd.concat([splits["train"], splits["validation"]]).sort_index()
    assert list(rows.index) == [1, 2, 3, 4]
    assert rows.loc[2, "text"] == 'He said "no" twice.'  # the bare quotes survive (TSV has no quoting)
    assert rows.loc[2, "text_pair"] == "She left."
    assert rows.loc[3, "label"] == 3.8 and isinstance(rows.loc[3, "label"], float)
    assert report["targets"]["4"]["max"] == 5.0


def test_extra_columns_are_an_error_unless_ignored(tmp_path):
    cfg = stsb_config(write(tmp_path / "sts.tsv", STSB_LIKE))
    with pytest.raises(DataError, match="row 2") as err:
        Regression(cfg.task).load(cfg)
    assert "9 fields" in str(err.value) and "data.extra_fields=ignore" in str(err.value)


def test_non_numeric_target_names_file_row_and_column(tmp_path):
    path = write(tmp_path / "sts.tsv", STSB_LIKE.replace("3.800", "high"))
    cfg = stsb_config(path, extra_fields="ignore")
    with pytest.raises(DataError) as err:
        Regression(cfg.task).load(cfg)
    assert (err.value.file, err.value.row, err.value.column) == (path, 3, 4)
    assert "'high' is not a number" in str(err.value)


def test_several_target_columns_become_lists(tmp_path):
    path = write(tmp_path / "t.csv", "text,a,b\nx y,1,10\ny z,2,20\nz x,3,oops\n")
    cfg = build_config({"task": {"name": "regression"},
                        "data": {"train": path, "label_column": ["a", "b"], "validation_size": 0, "test_size": 0}})
    with pytest.raises(DataError) as err:
        Regression(cfg.task).load(cfg)
    assert (err.value.row, err.value.column) == (3, "b")
    write(tmp_path / "t.csv", "text,a,b\nx y,1,10\ny z,2,20\nz x,3,30\n")
    task = Regression(cfg.task)
    splits, _ = task.load(cfg)
    assert task.targets == ["a", "b"] and splits["train"].loc[3, "label"] == [3.0, 30.0]


def test_several_label_columns_are_refused_for_classes(tmp_path):
    path = write(tmp_path / "t.csv", "text,a,b\nx,1,2\ny,2,3\n")
    cfg = build_config({"data": {"train": path, "label_column": ["a", "b"]}})
    from lmtune.tasks.classification import Classification

    with pytest.raises(ConfigError, match="several columns"):
        Classification(cfg.task).load(cfg)


def scaling_task(tmp_path: Path, standardize: bool) -> tuple[Regression, object]:
    path = write(tmp_path / "s.csv", "text,score\nthe film,2\nthe food,4\ngood service,6\nbad food,8\n")
    cfg = build_config({"task": {"name": "regression", "standardize_targets": standardize},
                        "data": {"train": path, "label_column": "score", "validation_size": 0, "test_size": 0}})
    task = Regression(cfg.task)
    return task, task.load(cfg)[0]["train"]


@pytest.mark.parametrize("standardize", [True, False])
def test_target_scaling_round_trip(tmp_path, tiny_bert, standardize):
    task, rows = scaling_task(tmp_path, standardize)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    features = task.encode(rows, tokenizer, build_config({}).data)
    scaled = np.array([f["labels"] for f in features])
    if standardize:  # mean 5, population std sqrt(5)
        assert task.mean.tolist() == [5.0] and task.std == pytest.approx([math.sqrt(5)])
        assert scaled.mean() == pytest.approx(0) and scaled.std() == pytest.approx(1)
    assert (scaled * task.std + task.mean).ravel() == pytest.approx([2, 4, 6, 8])
    # A head that outputs 0 predicts the scaled mean, which the inverse maps back to the training mean.
    model = task.build_model(tiny_bert, build_config({}).model)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
    restored = Regression.from_state(task.state())
    pred = restored.predictions(model, tokenizer, features, batch_size=2)
    assert pred.ravel() == pytest.approx([5.0 if standardize else 0.0] * 4, abs=1e-5)


def pairs_csv(path: Path, n: int = 40) -> str:
    words = ["good", "bad", "great", "awful", "food", "film"]
    lines = ["a,b,score"] + [f"{words[i % 6]} {i},{words[(i * 7) % 6]},{(i % 6) / 5:.1f}" for i in range(n)]
    return write(path, "\n".join(lines) + "\n")


def test_train_predict_and_pipeline(tmp_path, tiny_bert):
    run = train({"name": "r", "output_dir": str(tmp_path / "runs"), "task": {"name": "regression", "loss": "huber"},
                 "model": {"name": tiny_bert},
                 "data": {"train": pairs_csv(tmp_path / "p.csv"), "text_column": "a", "text_pair_column": "b",
                          "label_column": "score", "max_length": 32},
                 "train": {"max_steps": 3, "batch_size": 8, "seed": 1}})
    assert run.metrics["task"] == "regression"
    assert set(run.metrics["validation"]) == {"mse", "mae", "rmse", "pearson", "spearman"}
    assert run.metrics["train"]["best"]["eval"]["pearson"] == run.metrics["validation"]["pearson"]
    out = Predictor(run.path).predict([{"text": "good 1", "text_pair": "bad"}])
    assert set(out[0]) == {"row", "text", "text_pair", "score"}
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(run.model_dir), device="cpu")
    assert pipe.model.config.problem_type == "regression"
    score = pipe({"text": "good 1", "text_pair": "bad"})["score"]
    assert score == pytest.approx(out[0]["score"], abs=1e-4)  # raw output: no softmax or sigmoid applied
