"""`lmtune distill TEACHER_RUN --model STUDENT`: a small, fast classifier taught by a larger or slower one.

The teacher (a trained classification run, or a cross-validation folder whose fold models are averaged as an
ensemble) labels the training rows, plus an unlabelled file's rows when given, with its probabilities; the
student trains on them (lmtune.tasks.distillation) and is scored on the gold labels of the same validation and
test rows as any classifier. The run records both models' size and prediction speed, measured side by side on
the same rows in this process, and the teacher's accuracy on the first held-out split, the mark the student is
measured against.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lmtune.config import Config
from lmtune.errors import UserError
from lmtune.io import write_json
from lmtune.recipe import Run, train
from lmtune.reporting.report import write_reports
from lmtune.runs import as_config, with_demo_data
from lmtune.self_training import read_unlabelled
from lmtune.tasks import checked_config
from lmtune.tasks.classification import Classification
from lmtune.tasks.distillation import TEACHER, Distillation
from lmtune.trained.folder import model_dir
from lmtune.trained.predictor import Predictor

SPEED_ROWS = 1000  # validation rows both models predict for the speed comparison


def distill(teacher_run: str | Path, config: Config | dict | str | Path | None = None) -> Run:
    """Train the config's model (the student) on the teacher's probabilities, on data.train's rows and on
    data.unlabelled's when given; returns the student's run."""
    teachers = _teachers(Path(teacher_run))
    cfg = with_demo_data(as_config(config))
    cfg = checked_config(cfg.model_copy(update={"task": cfg.task.model_copy(update={"name": Distillation.name})}))
    splits, _ = Classification().load(cfg)  # read and split as the classifier reads labelled files
    if cfg.data.unlabelled:
        extra = read_unlabelled(cfg, after=int(splits["train"].index.max())).assign(label=None)
        splits["train"] = pd.concat([splits["train"], extra])
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"unlabelled": None})})
    started = time.perf_counter()
    splits["train"] = splits["train"].assign(**{TEACHER: _probabilities(teachers, splits["train"])})
    teacher_seconds = round(time.perf_counter() - started, 2)
    run = train(cfg, splits=splits)
    student = Predictor(run.path)
    held_out = next(iter(s for name, s in splits.items() if name != "train"), None)
    rows = (splits["train"] if held_out is None else held_out).head(SPEED_ROWS)
    scored = {} if held_out is None else {"accuracy": _accuracy(teachers, held_out), "scored_on": next(
        name for name in splits if name != "train")}
    run.metrics["distillation"] = {
        "teacher": {"run": str(teacher_run), "models": len(teachers), **scored, **_size(teachers),
                    "predict_samples_per_s": _speed(teachers, rows), "labelling_seconds": teacher_seconds},
        "student": {"run": str(run.path), **_size([student]), "predict_samples_per_s": _speed([student], rows)},
        "temperature": cfg.task.temperature, "alpha": cfg.task.alpha,
        "rows": run.metrics["data"].get("distillation", {})}
    write_json(run.path / "metrics.json", run.metrics)
    write_reports(run.path)
    return run


def _teachers(path: Path) -> list[Predictor]:
    """The teacher run's model, or each fold's of a cross-validation folder (cv.json)."""
    if (path / "cv.json").exists():
        folds = json.loads((path / "cv.json").read_text(encoding="utf-8"))["per_fold"]
        teachers = [Predictor(fold["run"]) for fold in folds]
    else:
        teachers = [Predictor(model_dir(path))]
    for teacher in teachers:
        if teacher.task.name != "classification" or teacher.task.multi_label:
            raise UserError(f"{path}: distillation takes a single-label classification teacher, not a "
                            f"{teacher.task.name} model")
    if len({tuple(t.task.labels) for t in teachers}) > 1:
        raise UserError(f"{path}: the fold models know different label sets, so they cannot be averaged")
    return teachers


def _probabilities(teachers: list[Predictor], rows: pd.DataFrame) -> list[dict]:
    """Each row's probabilities averaged over the teachers, {label: probability} in the teachers' label order."""
    inputs = rows[[c for c in ("text", "text_pair") if c in rows]]
    labels = teachers[0].task.labels
    total = np.zeros((len(rows), len(labels)))
    for teacher in teachers:
        records = teacher.predict(inputs)
        total += np.array([[r["probabilities"][c] for c in labels] for r in records])
    mean = total / len(teachers)
    return [dict(zip(labels, row.tolist(), strict=True)) for row in mean]


def _accuracy(teachers: list[Predictor], rows: pd.DataFrame) -> float:
    """The teacher's (or ensemble's) accuracy on held-out gold labels: the score the student is measured against."""
    probabilities = _probabilities(teachers, rows)
    predicted = [max(p, key=p.get) for p in probabilities]
    return round(float(np.mean([str(p) == str(g) for p, g in zip(predicted, rows["label"], strict=True)])), 4)


def _size(predictors: list[Predictor]) -> dict:
    params = sum(sum(p.numel() for p in pr.model.parameters()) for pr in predictors)
    files = sum(f.stat().st_size for pr in predictors for f in pr.model_dir.glob("*.safetensors"))
    return {"parameters": params, "megabytes": round(files / 1e6, 1)}


def _speed(predictors: list[Predictor], rows: pd.DataFrame) -> float:
    inputs = rows[[c for c in ("text", "text_pair") if c in rows]]
    for predictor in predictors:  # warm-up: first calls pay for allocation and kernel selection
        predictor.predict(inputs.head(64))
    started = time.perf_counter()
    for predictor in predictors:
        predictor.predict(inputs)
    return round(len(inputs) / (time.perf_counter() - started), 1)
