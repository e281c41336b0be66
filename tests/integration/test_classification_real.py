"""Integration: the real packaged MiniLM fine-tuned on real data for a few steps, through the CLI's API."""

from __future__ import annotations

import json

import pytest
from conftest import shared_file

from lmtune.api import Predictor, train

pytestmark = pytest.mark.slow


def test_minilm_sst2_few_steps_learns_and_serves(tmp_path):
    cfg = {
        "name": "sst2", "output_dir": str(tmp_path),
        "data": {"train": str(shared_file("sst2/train.tsv")), "validation": str(shared_file("sst2/dev.tsv")),
                 "text_column": "sentence", "max_train_rows": 1200, "test_size": 0, "max_length": 64},
        "train": {"max_steps": 30, "lr": 1e-4, "batch_size": 32, "eval_batch_size": 256, "eval_every": 30},
    }
    run = train(cfg)
    val = run.metrics["validation"]
    assert val["n"] == 6735
    # 30 steps of MiniLM on SST-2 already beat the majority class (55.5% on dev) by a wide margin.
    assert val["accuracy"] > 0.7
    assert run.metrics["params"]["trainable"] == run.metrics["params"]["total"] > 20_000_000
    lines = (run.path / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 6735 and {"text", "gold", "label", "probabilities"} <= set(json.loads(lines[0]))
    # The saved model, loaded afresh, reproduces the run's own predictions.
    recorded = [json.loads(line) for line in lines[:16]]
    again = Predictor(run.path).predict([r["text"] for r in recorded])
    assert [p["label"] for p in again] == [r["label"] for r in recorded]
    for p, r in zip(again, recorded, strict=True):
        assert p["probabilities"]["1"] == pytest.approx(r["probabilities"]["1"], abs=0.02)  # bf16 batch effects

def test_minilm_agnews_headerless_automatic_split(tmp_path):
    cfg = {
        "name": "agnews", "output_dir": str(tmp_path),
        "data": {"train": str(shared_file("agnews/train.tsv")), "text_column": 0, "label_column": 1,
                 "max_train_rows": 800, "max_length": 64},
        "train": {"max_steps": 10, "batch_size": 32, "eval_batch_size": 256},
    }
    run = train(cfg)
    report = run.metrics["data"]
    assert sorted(report["labels"]) == ["Business", "Sci/Tech", "Sports", "World"]
    assert set(report["rows"]) == {"train", "validation", "test"}
    assert run.metrics["test"]["confusion_matrix"]["labels"] == sorted(report["labels"])
    assert len(run.metrics["test"]["confusion_matrix"]["matrix"]) == 4
