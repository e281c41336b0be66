"""Integration: the Chinese-reading built-in encoders fine-tuned on the shared Chinese sets for a few steps."""

from __future__ import annotations

import json

import pytest
from conftest import shared_file

from lmtune.api import Predictor, train
from lmtune.evaluation.squad import question_scores
from lmtune.models.choose import DEFAULTS

pytestmark = pytest.mark.slow


def test_chinese_reviews_get_the_chinese_default_and_learn(tmp_path, capsys):
    run = train({"name": "waimai", "output_dir": str(tmp_path),  # no model named: chosen by the language
                 "data": {"train": str(shared_file("waimai10k/train.csv")), "max_train_rows": 1000,
                          "max_length": 64},
                 "train": {"max_steps": 30, "batch_size": 32, "eval_batch_size": 256}})
    assert run.config.model.name == DEFAULTS["zh"]["encoder"]
    assert f"model: {run.config.model.name}, chosen for the data" in capsys.readouterr().out
    assert run.metrics["data"]["unknown_token_rate"] < 0.01  # minilm: 0.60
    # The majority class (negative) is 67% of the rows, a macro-F1 of 0.40; minilm after 2 epochs of all 7,700
    # rows reached 0.71.
    assert run.metrics["test"]["f1_macro"] > 0.75
    text = "很好吃，送得很快"
    assert Predictor(run.path).predict([text])[0]["text"] == text


def test_m3e_small_learns_and_its_licence_travels_with_the_model(tmp_path, capsys):
    run = train({"name": "chnsenticorp", "output_dir": str(tmp_path), "model": {"name": "m3e-small"},
                 "data": {"train": str(shared_file("chnsenticorp/train.csv")),
                          "validation": str(shared_file("chnsenticorp/dev.csv")), "max_train_rows": 800,
                          "test_size": 0, "max_length": 96},
                 "train": {"max_steps": 25, "batch_size": 32, "eval_batch_size": 256}})
    assert "NON-COMMERCIAL RESEARCH USE ONLY" in capsys.readouterr().out
    assert run.metrics["validation"]["accuracy"] > 0.75  # the classes are balanced
    card = (run.model_dir / "README.md").read_text(encoding="utf-8")
    assert "license: other" in card and "non-commercial" in card


def test_resume_ner_tags_characters_of_chinese_text(tmp_path):
    run = train({"name": "resume", "output_dir": str(tmp_path), "task": {"name": "token-classification"},
                 "model": {"name": DEFAULTS["zh"]["encoder"]},
                 # 300 sentences, 75 of them held out; one character and its tag per line
                 "data": {"train": str(shared_file("resume_ner/train.txt")), "max_train_rows": 300,
                          "validation_size": 0.25, "test_size": 0, "max_length": 128},
                 "train": {"max_steps": 30, "batch_size": 16, "lr": 3e-4, "log_every": 10, "eval_before": True}})
    assert "B-NAME" in run.metrics["data"]["labels"]
    losses = [r["loss"] for r in map(json.loads, (run.path / "train_log.jsonl").read_text().splitlines())
              if "loss" in r]
    assert losses[-1] < losses[0]
    before, after = run.metrics["validation_before"], run.metrics["validation"]
    assert after["overall_accuracy"] > before["overall_accuracy"]
    out = Predictor(run.path).predict([{"tokens": list("高勇，男，中国国籍，无境外居留权。")}])[0]
    assert out["text"] == "高勇，男，中国国籍，无境外居留权。" and len(out["tags"]) == 17
    assert all(e["text"] == out["text"][e["start"]:e["end"]] for e in out["entities"])


def test_cmrc2018_is_scored_by_characters_on_held_out_articles(tmp_path):
    run = train({"name": "cmrc", "output_dir": str(tmp_path), "task": {"name": "question-answering"},
                 "model": {"name": DEFAULTS["zh"]["encoder"]},
                 "data": {"train": str(shared_file("cmrc2018/train.json")), "validation_size": 0.2,
                          "test_size": 0, "max_length": 256, "doc_stride": 96},
                 "train": {"max_steps": 20, "batch_size": 16, "lr": 2e-4, "log_every": 5, "eval_batch_size": 64}})
    losses = [r["loss"] for r in map(json.loads, (run.path / "train_log.jsonl").read_text().splitlines())
              if "loss" in r]
    assert losses[-1] < losses[0]  # 20 steps move the loss; the scores need a few epochs (README)
    assert run.metrics["validation"]["questions"] > 100
    records = [json.loads(line) for line in (run.path / "predictions.jsonl").read_text().splitlines()]
    for r in records:  # Chinese contexts are scored as CMRC's script does, by character segments
        assert (r["exact_match"], r["f1"]) == pytest.approx(question_scores(r["prediction"], r["gold"], True), abs=1e-6)
