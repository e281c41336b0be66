"""Fine-tune the real `minilm` on real CoNLL-2003 sentences for a few steps; the saved model must load in a
plain transformers token-classification pipeline."""

from __future__ import annotations

import json

import pytest
from conftest import shared_file

from lmtune.api import Predictor, train

pytestmark = pytest.mark.slow


def test_minilm_learns_conll_tags_and_loads_in_a_pipeline(tmp_path):
    from transformers import pipeline

    data = shared_file("conll2003/train.txt")
    run = train({"name": "ner", "output_dir": str(tmp_path), "task": {"name": "token-classification"},
                 "model": {"name": "minilm"},
                 # 400 sentences, 100 of them held out for validation; the tag column is the last (NER) one
                 "data": {"train": str(data), "max_train_rows": 400, "validation_size": 0.25, "test_size": 0},
                 "train": {"max_steps": 15, "batch_size": 16, "lr": 2e-4, "log_every": 5, "eval_before": True}})
    assert run.metrics["data"]["labels"]["O"] > 0 and "B-PER" in run.metrics["data"]["labels"]
    losses = [r["loss"] for r in map(json.loads, (run.path / "train_log.jsonl").read_text().splitlines())
              if "loss" in r]
    assert losses[-1] < losses[0]
    after, before = run.metrics["validation"], run.metrics["validation_before"]
    assert after["overall_accuracy"] > max(before["overall_accuracy"], 0.7)  # most words are 'O'
    assert after["sentences"] == 100 and after["entities"] > 0

    tagger = pipeline("token-classification", model=str(run.model_dir), aggregation_strategy="first")
    assert set(tagger.model.config.id2label.values()) == set(run.metrics["data"]["labels"])
    assert isinstance(tagger("Peter Blackburn visited Brussels."), list)
    out = Predictor(run.path).predict([{"tokens": ["Peter", "Blackburn", "visited", "Brussels", "."]}])
    assert len(out[0]["tags"]) == 5
    assert all(e["text"] == out[0]["text"][e["start"]:e["end"]] for e in out[0]["entities"])
