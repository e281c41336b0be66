"""Extractive QA on real XQuAD text with the real minilm tokenizer and model."""

from __future__ import annotations

import json

import pytest
from conftest import shared_file
from transformers import AutoTokenizer

from lmtune.api import train
from lmtune.config import DataConfig, TaskConfig
from lmtune.data.squad import read_squad
from lmtune.models import resolve
from lmtune.tasks.question_answering import QuestionAnswering

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("language", ["en", "zh"])
def test_window_labels_recover_the_gold_answers(language):
    rows = read_squad(shared_file(f"xquad/{language}.json"))
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    task = QuestionAnswering(TaskConfig(name="question-answering"))
    features = task.encode(rows, tokenizer, DataConfig(max_length=256, doc_stride=96))
    found, labelled = set(), 0
    for f in features:
        start, end = f["labels"]
        if start == 0:
            continue
        labelled += 1
        context, answer = rows["context"].iloc[f["example"]], rows["answers"].iloc[f["example"]][0]["text"]
        recovered = context[f["offsets"][start][0]:f["offsets"][end][1]]
        assert answer in recovered  # a span never cuts the answer; it may round out to whole tokens
        if recovered == answer:
            found.add(f["example"])
    assert len({f["example"] for f in features}) == len(rows)
    assert len(found) >= 0.99 * len(rows)  # English has one answer ending mid-token ("(2,70" of "(2,700")
    assert labelled < len(features)  # long contexts produce windows without the answer, labelled [CLS]


def test_fine_tune_a_few_steps_on_xquad_en(tmp_path):
    data = shared_file("xquad/en.json")
    run = train({"name": "xquad", "output_dir": str(tmp_path), "task": {"name": "question-answering"},
                 "model": {"name": "minilm"},
                 "data": {"train": str(data), "max_length": 192, "doc_stride": 64, "max_train_rows": 48,
                          "validation_size": 0.06, "test_size": 0},
                 "train": {"max_steps": 4, "batch_size": 12, "lr": 1e-4, "eval_before": True, "seed": 0}})
    metrics = run.metrics
    assert metrics["data"]["articles"]["validation"] == 2 and metrics["data"]["leakage"] == {"validation": 0}
    for split in ("validation_before", "validation"):
        assert 0 <= metrics[split]["exact_match"] <= metrics[split]["f1"] <= 1
    rows = read_squad(data).set_index("id")
    records = [json.loads(line) for line in (run.path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == metrics["validation"]["questions"] == metrics["data"]["rows"]["validation"]
    for r in records:
        assert rows.at[r["id"], "context"][r["start"]:r["end"]] == r["prediction"]
        assert r["gold"] == [a["text"] for a in rows.at[r["id"], "answers"]]
