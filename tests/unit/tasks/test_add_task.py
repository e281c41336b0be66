"""A new task is one module plus one registry line: a toy task written here, outside the package, with a setting
of its own, trains, evaluates, reports, saves and predicts through the unchanged pipeline."""

from __future__ import annotations

import importlib

import pytest

from lmtune.errors import ConfigError
from lmtune.recipe import train
from lmtune.tasks import TASKS
from lmtune.trained.predictor import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")

MODULE = '''
"""Does the text mention the keyword (task.keyword)? The labels come from the text itself."""

from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from lmtune.data.splits import read_and_split
from lmtune.evaluation.inference import model_outputs
from lmtune.models.load import load_model
from lmtune.tasks.base import Task, TaskSettings


class Keyword(Task):
    name: ClassVar[str] = "keyword"
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    input_fields: ClassVar[tuple[str, ...]] = ("text",)
    metric = "accuracy"
    higher_is_better = True

    class Settings(TaskSettings):
        keyword: str = Field("good", description="The word whose presence is the label.")

    def __init__(self, cfg=None, max_length: int = 32):
        super().__init__(cfg)
        self.max_length = max_length

    def load(self, cfg):
        self.max_length = cfg.data.max_length
        splits, sources = read_and_split(cfg.data, cfg.train.seed, self._read)
        return splits, {"rows": {name: len(rows) for name, rows in splits.items()}, "sources": sources}

    def read_eval(self, data):
        return self._read(data.train)

    def _read(self, path):
        return pd.read_csv(path)[["text"]]

    def build_model(self, path, cfg):
        return load_model(AutoModelForSequenceClassification, path, cfg, num_labels=2)

    def encode(self, rows, tokenizer, cfg):
        enc = tokenizer(list(rows["text"]), truncation=True, max_length=self.max_length)
        return [{"input_ids": ids, "attention_mask": mask, "labels": int(self.cfg.keyword in text.split())}
                for ids, mask, text in zip(enc["input_ids"], enc["attention_mask"], rows["text"], strict=True)]

    def collate(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss(self, model, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return torch.nn.functional.cross_entropy(model(**inputs).logits.float(), batch["labels"])

    def _mentions(self, model, tokenizer, features, batch_size):
        logits = model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision)
        return np.stack(logits).argmax(-1).astype(bool)

    def evaluate(self, model, tokenizer, rows, features, batch_size):
        found = self._mentions(model, tokenizer, features, batch_size)
        gold = np.array([bool(f["labels"]) for f in features])
        records = [{"row": int(i), "mentions": bool(p), "gold": bool(g)} for i, p, g in zip(rows.index, found, gold)]
        return {"accuracy": float((found == gold).mean())}, records

    def predict(self, model, tokenizer, rows, batch_size):
        features = [{k: v for k, v in f.items() if k != "labels"} for f in self.encode(rows, tokenizer, None)]
        return [{"mentions": bool(p)} for p in self._mentions(model, tokenizer, features, batch_size)]

    def state(self):
        return {"task": self.name, "keyword": self.cfg.keyword, "max_length": self.max_length}

    @classmethod
    def from_state(cls, state):
        return cls({"keyword": state["keyword"]}, state["max_length"])
'''


@pytest.fixture
def keyword_task(tmp_path, monkeypatch):
    (tmp_path / "toy_keyword_task.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_keyword_task")
    monkeypatch.setitem(TASKS, module.Keyword.name, module.Keyword)  # the one registry line
    return module.Keyword


def config(tiny_bert, tmp_path, task: dict) -> dict:
    rows = [f"the {w} film {i}" for i in range(16) for w in ("great", "bad")]
    (tmp_path / "d.csv").write_text("text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return {"name": "toy", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert}, "task": task,
            "data": {"train": str(tmp_path / "d.csv"), "max_length": 16},
            "train": {"max_steps": 2, "batch_size": 8, "eval_batch_size": 32}}


def test_a_toy_task_trains_reports_and_predicts(keyword_task, tiny_bert, tmp_path):
    run = train(config(tiny_bert, tmp_path, {"name": "keyword", "keyword": "great"}))
    assert run.metrics["task"] == "keyword" and 0 <= run.metrics["validation"]["accuracy"] <= 1
    assert (run.path / "report.html").exists() and (run.path / "model" / "README.md").exists()
    saved = Predictor(run.path)
    assert isinstance(saved.task, keyword_task) and saved.task.cfg.keyword == "great"
    assert list(saved.predict(["a great film"])[0]) == ["mentions"]


def test_the_toy_tasks_own_setting_is_checked(keyword_task, tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="task.keywrd.*did you mean 'task.keyword'"):
        train(config(tiny_bert, tmp_path, {"name": "keyword", "keywrd": "great"}))
