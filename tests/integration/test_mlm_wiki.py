"""Integration: masked-LM continued pre-training of the real MiniLM on English Wikipedia text, then a
classifier fine-tuned from the adapted folder."""

from __future__ import annotations

import pytest
from conftest import shared_file

from lmtune.api import Predictor, train

pytestmark = pytest.mark.slow


def test_minilm_mlm_on_wiki_then_classifier(tmp_path):
    cfg = {
        "name": "mlm", "output_dir": str(tmp_path), "task": {"name": "mlm"},
        "data": {"train": str(shared_file("instruct/wiki_demo.txt")), "max_train_rows": 4,
                 "validation_size": 0.25, "test_size": 0, "max_length": 64},
        "train": {"max_steps": 8, "lr": 1e-4, "batch_size": 16, "eval_every": 8, "eval_before": True},
    }
    run = train(cfg)
    before, after = run.metrics["validation_before"], run.metrics["validation"]
    assert run.metrics["data"]["rows"] == {"train": 3, "validation": 1}
    assert after["masked_tokens"] == before["masked_tokens"] > 100
    # all-MiniLM-L6-v2 ships no masked-LM head, so the first perplexity is that of a fresh head: training
    # brings it down by a large factor within a few steps.
    assert after["perplexity"] < before["perplexity"] / 10
    fills = Predictor(run.path).predict(["Paris is the capital of [MASK]."])[0]["masks"]
    assert len(fills) == 1 and len(fills[0]) == 5

    clf = train({"name": "clf", "output_dir": str(tmp_path), "model": {"name": str(run.model_dir)},
                 "data": {"max_length": 64}, "train": {"max_steps": 3, "batch_size": 16}})
    assert clf.metrics["task"] == "classification" and 0 <= clf.metrics["test"]["accuracy"] <= 1
