"""Self-training (`data.unlabelled`): rounds of pseudo-labelling confident unlabelled rows and retraining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import lmtune

from lmtune.errors import ConfigError
from lmtune.recipe import train
from lmtune.self_training import read_unlabelled, self_train
from lmtune.trained.predictor import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")


def write_files(folder: Path) -> tuple[str, str]:
    words = [("good", "good"), ("great", "good"), ("bad", "bad"), ("awful", "bad")]
    (folder / "d.csv").write_text("text,label\n" + "".join(f"the film {words[i % 4][0]} {i},{words[i % 4][1]}\n"
                                                           for i in range(24)), encoding="utf-8")
    (folder / "u.txt").write_text("".join(f"the food {w} {i}\n" for i in range(15) for w in ("great", "awful")),
                                  encoding="utf-8")
    return str(folder / "d.csv"), str(folder / "u.txt")


def config(tiny_bert: str, folder: Path, threshold: float, rounds: int = 2) -> dict:
    data, unlabelled = write_files(folder)
    return {"name": "st", "output_dir": str(folder / "runs"), "model": {"name": tiny_bert},
            "data": {"train": data, "unlabelled": unlabelled, "max_length": 16},
            "train": {"max_steps": 2, "batch_size": 8, "eval_batch_size": 64},
            "task": {"baselines": False, "explanations": 0, "pseudo_label_threshold": threshold,
                     "self_training_rounds": rounds}}


def test_each_round_adds_the_rows_the_last_model_labels_confidently(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, threshold=0.5)
    run = self_train(cfg)
    folder = tmp_path / "runs" / "st"
    found = json.loads((folder / "self_training.json").read_text(encoding="utf-8"))
    assert [r["round"] for r in found["rounds"]] == [0, 1, 2] and found["rounds"][0]["pseudo_labels"] == 0
    unlabelled = read_unlabelled(run.config.model_copy(update={"data": run.config.data.model_copy(
        update={"unlabelled": cfg["data"]["unlabelled"]})}))
    assert len(unlabelled) == 30
    for before, after in zip(found["rounds"], found["rounds"][1:], strict=False):
        scores = [r["score"] for r in Predictor(before["run"]).predict(unlabelled)]
        assert after["pseudo_labels"] == sum(s >= 0.5 for s in scores)  # 2 labels: every row reaches 0.5
        assert sum(after["pseudo_label_classes"].values()) == after["pseudo_labels"]
    kept = max(found["rounds"], key=lambda r: r["validation"])
    assert found["kept"] == kept["round"] and run.path == Path(kept["run"])
    assert run.metrics["self_training"] == found
    assert "Self-training" in (run.path / "report.md").read_text(encoding="utf-8")
    assert "pseudo-labelled rows" in (folder / "self_training.md").read_text(encoding="utf-8")


def test_a_threshold_no_prediction_reaches_adds_nothing(tiny_bert, tmp_path):
    run = self_train(config(tiny_bert, tmp_path, threshold=0.999999, rounds=1))
    assert [r["pseudo_labels"] for r in run.metrics["self_training"]["rounds"]] == [0, 0]


def test_a_plain_training_run_refuses_unlabelled_data(tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="self-training"):
        train(config(tiny_bert, tmp_path, threshold=0.9))


def test_the_cli_self_trains_when_given_unlabelled_texts(tiny_bert, tmp_path, monkeypatch, capsys):
    data, unlabelled = write_files(tmp_path)
    code, out, err = lmtune(monkeypatch, capsys, "train", "--model", tiny_bert, "--data", data, "--unlabelled",
                            unlabelled, "--name", "cli", "--output-dir", str(tmp_path / "runs"), "--max-steps", "1",
                            "--set", "data.max_length=16", "--set", "task.self_training_rounds=1",
                            "--set", "task.baselines=false")
    assert code == 0, out + err
    assert "self-training round 1" in out and (tmp_path / "runs" / "cli" / "self_training.json").exists()
