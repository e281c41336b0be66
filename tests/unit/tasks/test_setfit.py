"""Few-shot classification in the SetFit style: the pair sampling, and a run end to end on the tiny random BERT."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from lmtune.recipe import train
from lmtune.tasks.setfit import sentence_pairs
from lmtune.trained.predictor import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")


def test_each_round_pairs_every_example_once_with_its_class_and_once_with_another():
    labels = ["a", "a", "a", "b", "b", "c", "c"]
    pairs = sentence_pairs(labels, rounds=3, seed=0)
    assert len(pairs) == 3 * 2 * len(labels)
    for i, j, target in pairs:
        assert i != j
        assert (labels[i] == labels[j]) == (target == 1.0)
    firsts = Counter(i for i, _, _ in pairs)
    assert all(firsts[i] == 6 for i in range(len(labels)))
    assert pairs == sentence_pairs(labels, rounds=3, seed=0) and pairs != sentence_pairs(labels, rounds=3, seed=1)


def test_a_class_of_one_example_gets_no_positive_pair():
    pairs = sentence_pairs(["a", "b", "b"], rounds=1, seed=0)
    assert [(t, i) for i, _, t in pairs if i == 0] == [(0.0, 0)]
    assert sentence_pairs(["a", "a"], rounds=2, seed=0) == [(0, 1, 1.0), (1, 0, 1.0)] * 2


def test_a_setfit_run_trains_the_encoder_on_pairs_and_saves_its_head(tiny_bert, tmp_path):
    words = [("good", "good"), ("great", "good"), ("bad", "bad"), ("awful", "bad")]
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"the film {words[i % 4][0]} {i},{words[i % 4][1]}\n"
                                                             for i in range(40)))
    run = train({"name": "sf", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                 "task": {"name": "setfit", "pair_rounds": 2}, "data": {"train": str(tmp_path / "d.csv"),
                                                                        "max_length": 16},
                 "train": {"epochs": 1, "batch_size": 8}})
    train_rows = run.metrics["data"]["rows"]["train"]
    assert run.metrics["train"]["steps"] == int(np.ceil(2 * 2 * train_rows / 8))  # pairs, not rows
    assert 0 <= run.metrics["validation"]["accuracy"] <= 1
    state = json.loads((run.model_dir / "lmtune.json").read_text())
    assert state["task"] == "setfit" and len(state["head"]["coef"]) == 1  # a binary head: one weight row
    saved = Predictor(run.path)
    out = saved.predict(["the film great", "the film awful"])
    assert {o["label"] for o in out} <= {"good", "bad"}
    assert all(sum(o["probabilities"].values()) == pytest.approx(1.0, abs=1e-5) for o in out)
    test_records = [json.loads(line) for line in (run.path / "predictions.jsonl").read_text().splitlines()]
    again = saved.predict([r["text"] for r in test_records])
    assert [o["label"] for o in again] == [r["label"] for r in test_records]  # the saved head is the scored one
