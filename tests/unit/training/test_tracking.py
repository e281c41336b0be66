"""Experiment tracking: TensorBoard event files in every run, MLflow's local store when asked for."""

from __future__ import annotations

import pytest

from lmtune.api import train
from lmtune.training.tracking import local_store


def tiny_config(tiny_bert, tmp_path, **train_extra) -> dict:
    rows = "".join(f"the film {'good' if i % 2 else 'bad'} {i},{'good' if i % 2 else 'bad'}\n" for i in range(24))
    (tmp_path / "d.csv").write_text("text,label\n" + rows, encoding="utf-8")
    return {"name": "t", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
            "task": {"baselines": False}, "data": {"train": str(tmp_path / "d.csv"), "max_length": 32},
            "train": {"max_steps": 3, "batch_size": 8, "eval_every": 1, "log_every": 1, **train_extra}}


def scalars(folder) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder)).Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_logs_are_always_written(tiny_bert, tmp_path):
    run = train(tiny_config(tiny_bert, tmp_path))
    logged = scalars(run.path / "tensorboard")
    assert len(logged["train/loss"]) == 3 and len(logged["validation/accuracy"]) == 3
    assert logged["final/test/accuracy"] == [pytest.approx(run.metrics["test"]["accuracy"])]


def test_mlflow_local_store_when_asked(tiny_bert, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = train(tiny_config(tiny_bert, tmp_path, track="mlflow"))
    mlflow.set_tracking_uri(local_store(str(tmp_path / "runs")))
    found = mlflow.search_runs(experiment_names=["lmtune"], output_format="list")
    assert len(found) == 1 and found[0].info.status == "FINISHED"
    data = found[0].data
    assert data.params["train.max_steps"] == "3" and data.tags["run_dir"] == str(run.path.resolve())
    assert data.metrics["final.test.accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
