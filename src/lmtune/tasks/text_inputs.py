"""What the tasks whose examples are one text or a text pair share (classification, regression): reading
labelled rows, encoding, the sequence-classification head's outputs, and output records."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from transformers import DataCollatorWithPadding

from lmtune.config import Column, Config, DataConfig, TaskConfig
from lmtune.data import load_labelled
from lmtune.data.clean import as_given, within_view
from lmtune.evaluation.inference import model_outputs
from lmtune.tasks.base import Task, TaskSettings


class TextSettings(TaskSettings):
    explanations: int = Field(10, ge=0, description="Rows the report explains with token attributions (integrated "
                              "gradients): the worst errors and other rows, half each, plus a faithfulness check "
                              "over as many rows drawn at random; 0 = none.")


class TextTask(Task):
    """One text (or text pair) per row, read by a sequence-classification head. A task adds what its labels
    are: `categorical`, `learn_labels`, `labelled_rows`, `loss_labels`, `from_logits`, `metrics_of` and `outputs_of`."""

    peft_task_type: ClassVar[str] = "SEQ_CLS"
    input_fields: ClassVar[tuple[str, ...]] = ("text", "text_pair")
    pipeline_tag: ClassVar[str | None] = "text-classification"
    onnx_outputs: ClassVar[tuple[str, ...] | None] = ("logits",)
    categorical: ClassVar[bool]  # labels are classes (stratified splits; every evaluation label seen in training)

    @property
    def explained_rows(self) -> int:
        return self.cfg.explanations

    def __init__(self, cfg: TaskConfig | dict | None = None, pair: bool = False, max_length: int = 256):
        super().__init__(cfg)
        self.pair, self.max_length = pair, max_length

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        d = cfg.data
        splits, report = load_labelled(d, {"text": d.text_column, "text_pair": d.text_pair_column}, d.label_column,
                                       seed=cfg.train.seed, categorical=self.categorical)
        if report["columns"]:
            # Columns found in the file go into cfg.data, so the run's saved config names them and evaluate,
            # predict and resume read the same columns.
            cfg.data = d.model_copy(update=report["columns"])
        splits = {name: self.labelled_rows(rows, cfg.data.label_column) for name, rows in splits.items()}
        return splits, {**report, **self.learn(cfg, splits)}

    def learn(self, cfg: Config, splits: dict[str, pd.DataFrame]) -> dict:
        """Learn what the labels are from splits already read: apart from load(), cross-validation calls it once
        per fold, so each fold's model knows only its own training rows."""
        self.pair, self.max_length = cfg.data.text_pair_column is not None, cfg.data.max_length
        return self.learn_labels(cfg.data, splits)

    def learn_labels(self, data: DataConfig, splits: dict[str, pd.DataFrame]) -> dict:
        """What learn() learns from the labels (label set, target scaling); its part of the data report."""
        raise NotImplementedError

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        """One labelled file, unsplit, checked against what the model knows."""
        whole = data.model_copy(update={"validation": None, "test": None, "validation_size": 0.0,
                                        "test_size": 0.0, "max_train_rows": None})
        texts = {"text": data.text_column, "text_pair": data.text_pair_column if self.pair else None}
        rows = load_labelled(whole, texts, data.label_column, seed=0, categorical=self.categorical)[0]["train"]
        return self.labelled_rows(rows, data.label_column, known=True)

    def labelled_rows(self, rows: pd.DataFrame, label_column: Column | list[Column],
                      known: bool = False) -> pd.DataFrame:
        """Rows with their labels in the task's own form; `known`: checked against what the model learnt."""
        raise NotImplementedError

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        features = encode_texts(rows, tokenizer, cfg.max_length, self.pair)
        if "label" in rows:
            for f, y in zip(features, self.loss_labels(rows), strict=True):
                f["labels"] = y
        return features

    def loss_labels(self, rows: pd.DataFrame) -> list:
        """Each row's label as the loss reads it."""
        raise NotImplementedError

    def collate(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    # -- evaluation and prediction ------------------------------------------------------------------
    def predictions(self, model, tokenizer, features: list[dict], batch_size: int) -> np.ndarray:
        """(rows, outputs) in the task's terms (`from_logits`)."""
        logits = np.stack(model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision))
        # float64: sklearn checks that probabilities sum to 1 tighter than float32 rounding allows
        return self.from_logits(logits.astype(np.float64).reshape(len(features), -1))

    def from_logits(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        values = self.predictions(model, tokenizer, features, batch_size)
        records = self.records(rows, values)
        for record, gold in zip(records, rows["label"], strict=True):
            record["gold"] = gold
        return self.metrics_of(values, rows, features), records

    def metrics_of(self, values: np.ndarray, rows: pd.DataFrame, features: list[dict]) -> dict:
        """The metrics of `predictions` on labelled rows."""
        raise NotImplementedError

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        # truncated as in training: the task's saved max_length
        features = self.encode(rows.drop(columns=["label"], errors="ignore"), tokenizer,
                               DataConfig(max_length=self.max_length))
        return self.records(rows, self.predictions(model, tokenizer, features, batch_size))

    def records(self, rows: pd.DataFrame, values: np.ndarray) -> list[dict]:
        """One output record per row: its source row number and input text(s) as given, and its outputs."""
        pairs = as_given(rows, "text_pair") if self.pair else None
        out = []
        for (row, text), value in zip(as_given(rows, "text").items(), values, strict=True):
            record = {"row": int(row), "text": text}
            if pairs is not None:
                record["text_pair"] = pairs[row]
            out.append({**record, **self.outputs_of(value)})
        return out

    def outputs_of(self, value: np.ndarray) -> dict:
        """One row's outputs in its record."""
        raise NotImplementedError


def encode_texts(rows: pd.DataFrame, tokenizer, max_length: int, pair: bool) -> list[dict]:
    """Tokenised `text` (and `text_pair`) rows, truncated to max_length, one feature dict per row."""
    pairs = within_view(rows["text_pair"], max_length) if pair else None
    enc = tokenizer(within_view(rows["text"], max_length), pairs, truncation=True, max_length=max_length)
    return [dict(zip(enc.keys(), values, strict=True)) for values in zip(*enc.values(), strict=True)]
