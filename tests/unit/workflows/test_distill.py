"""Knowledge distillation: the loss against a hand-worked example, and `lmtune distill` end to end on the tiny
random BERT (teacher: a trained run or a cross-validation ensemble; unlabelled rows learn from the teacher)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import lmtune

from lmtune.errors import UserError
from lmtune.tasks.distillation import distillation_loss
from lmtune.trained.predictor import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_loss_matches_a_hand_worked_example():
    """Teacher (0.8, 0.2) at T=2 softens to (2/3, 1/3): sqrt(0.8) is twice sqrt(0.2). Student logits (0, 0) give
    (1/2, 1/2) at any T. KL = 2/3 ln(4/3) + 1/3 ln(2/3), times T^2 = 4; the labelled row (gold 0) adds
    alpha x (-ln 1/2) and keeps 1 - alpha of the KL term; the unlabelled row (-100) keeps all of it."""
    kl = 4 * (2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3))
    labelled, unlabelled = 0.25 * math.log(2) + 0.75 * kl, kl
    loss = distillation_loss(torch.zeros(2, 2), torch.tensor([[0.8, 0.2], [0.8, 0.2]]), torch.tensor([0, -100]),
                             temperature=2.0, alpha=0.25)
    assert float(loss) == pytest.approx((labelled + unlabelled) / 2, rel=1e-6)


def test_a_student_that_agrees_with_a_confident_teacher_has_almost_no_soft_loss():
    loss = distillation_loss(torch.tensor([[8.0, -8.0]]), torch.tensor([[0.999999, 0.000001]]),
                             torch.tensor([-100]), temperature=1.0, alpha=0.5)
    assert float(loss) < 1e-4


def write_data(path, n: int = 24) -> str:
    words = [("good", "good"), ("great", "good"), ("bad", "bad"), ("awful", "bad")]
    rows = [f"the film {words[i % 4][0]} {i},{words[i % 4][1]}\n" for i in range(n)]
    path.write_text("text,label\n" + "".join(rows), encoding="utf-8")
    return str(path)


def test_distill_trains_a_student_on_labelled_and_unlabelled_rows(tiny_run, tiny_bert, tmp_path, monkeypatch,
                                                                   capsys):
    data = write_data(tmp_path / "d.csv")
    (tmp_path / "more.txt").write_text("".join(f"the food great {i}\nthe service bad {i}\n" for i in range(10)))
    code, out, err = lmtune(monkeypatch, capsys, "distill", str(tiny_run), "--model", tiny_bert, "--data", data,
                            "--unlabelled", str(tmp_path / "more.txt"), "--name", "student",
                            "--output-dir", str(tmp_path / "runs"), "--max-steps", "2",
                            "--set", "data.max_length=16", "--set", "task.temperature=3")
    assert code == 0, out + err
    run = tmp_path / "runs" / "student"
    metrics = json.loads((run / "metrics.json").read_text())
    info = metrics["distillation"]
    assert info["rows"] == {"labelled_rows": metrics["data"]["rows"]["train"] - 20, "unlabelled_rows": 20}
    assert info["temperature"] == 3 and info["alpha"] == 0.5
    for side in ("teacher", "student"):
        assert info[side]["parameters"] > 0 and info[side]["megabytes"] > 0 and info[side]["predict_samples_per_s"] > 0
    assert "accuracy" in metrics["validation"]
    assert info["teacher"]["scored_on"] == "validation" and 0 <= info["teacher"]["accuracy"] <= 1
    student = Predictor(run)
    assert student.task.name == "classification" and student.task.labels == Predictor(tiny_run).task.labels
    assert set(student.predict(["great film"])[0]["probabilities"]) == {"bad", "good"}


def test_a_cross_validation_folder_teaches_as_an_ensemble(tiny_bert, tmp_path):
    from lmtune.distill import _accuracy, _probabilities, _teachers
    from lmtune.recipe import cross_validate

    data = write_data(tmp_path / "d.csv")
    cross_validate({"name": "cv", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                    "data": {"train": data, "max_length": 16}, "train": {"max_steps": 1, "batch_size": 8},
                    "task": {"baselines": False, "explanations": 0}}, folds=2)
    teachers = _teachers(tmp_path / "runs" / "cv")
    assert len(teachers) == 2
    import pandas as pd

    rows = pd.DataFrame({"text": ["the film good 1", "the film bad 2"]}, index=[1, 2])
    each = [[r["probabilities"]["good"] for r in t.predict(rows)] for t in teachers]
    mean = [p["good"] for p in _probabilities(teachers, rows)]
    assert mean == pytest.approx([(a + b) / 2 for a, b in zip(*each, strict=True)])
    # The ensemble's accuracy is its averaged probabilities' argmax against the gold labels.
    gold = ["good" if p > 0.5 else "bad" for p in mean]
    assert _accuracy(teachers, rows.assign(label=gold)) == 1.0
    assert _accuracy(teachers, rows.assign(label=[g == "good" and "bad" or "good" for g in gold])) == 0.0


def test_only_a_classification_teacher_teaches(tiny_bert, tmp_path):
    from lmtune.distill import _teachers
    from lmtune.recipe import train

    rows = "".join(f"the film {i},{i / 10}\n" for i in range(20))
    (tmp_path / "r.csv").write_text("text,score\n" + rows)
    run = train({"name": "reg", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                 "task": {"name": "regression"}, "data": {"train": str(tmp_path / "r.csv"), "max_length": 16},
                 "train": {"max_steps": 1}})
    with pytest.raises(UserError, match="single-label classification teacher"):
        _teachers(run.path)
