"""Regression: one or more numeric targets per text or sentence pair (e.g. STS-B similarity scores)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from lmtune.config import Column, Config, DataConfig, ModelConfig, TaskConfig
from lmtune.data import load_labelled
from lmtune.data.clean import as_number
from lmtune.data.readers import file_label
from lmtune.errors import ConfigError, DataError
from lmtune.evaluation.inference import model_outputs
from lmtune.evaluation.regression import regression_metrics
from lmtune.models.load import load_model
from lmtune.tasks.text_inputs import add_gold, encode_texts, encode_unlabelled, load_texts, text_records


class Regression:
    name: ClassVar[str] = "regression"
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    input_fields: ClassVar[tuple[str, ...]] = ("text", "text_pair")
    # Pearson is scale-free, so the mean over targets in different units still means something, and it is
    # the number STS-B reports; MSE (reported beside it) would let the widest-ranged target dominate.
    metric = "pearson"
    higher_is_better = True

    def __init__(self, cfg: TaskConfig, targets: list[str] | None = None, pair: bool = False,
                 max_length: int = 256, mean: list[float] | None = None, std: list[float] | None = None):
        self.cfg, self.targets, self.pair, self.max_length = cfg, targets or [], pair, max_length
        # Training runs on (y - mean) / std; predictions are mapped back. mean 0 / std 1 = no scaling.
        self.mean = np.array(mean if mean is not None else [0.0] * len(self.targets))
        self.std = np.array(std if std is not None else [1.0] * len(self.targets))
        self.precision = "auto"

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        splits, report = load_texts(cfg, categorical=False)
        columns = _columns(cfg.data.label_column)
        splits = {name: _numeric(rows, columns) for name, rows in splits.items()}
        return splits, {**report, **self.learn(cfg, splits)}

    def learn(self, cfg: Config, splits: dict[str, pd.DataFrame]) -> dict:
        """Learn the target scaling from splits already read (numeric labels): apart from load(),
        cross-validation calls it once per fold, so no fold's scaling sees its held-out rows."""
        d = cfg.data
        self.pair, self.max_length = d.text_pair_column is not None, d.max_length
        columns = _columns(d.label_column)
        self.targets = [str(c) for c in columns]
        gold = _gold(splits["train"], len(columns))
        if self.cfg.standardize_targets:
            self.mean, self.std = gold.mean(axis=0), gold.std(axis=0)
            self.std[self.std == 0] = 1.0  # a constant target: nothing to scale
        else:
            self.mean, self.std = np.zeros(len(columns)), np.ones(len(columns))
        return {"targets": {name: {"mean": round(float(gold[:, i].mean()), 6),
                                   "std": round(float(gold[:, i].std()), 6),
                                   "min": float(gold[:, i].min()), "max": float(gold[:, i].max())}
                            for i, name in enumerate(self.targets)}}

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        """One labelled file, unsplit, with as many target columns as the model predicts."""
        columns = _columns(data.label_column)
        if len(columns) != len(self.targets):
            raise ConfigError(f"data.label_column names {len(columns)} column(s) but the model predicts "
                              f"{len(self.targets)} target(s) ({', '.join(self.targets)})")
        whole = data.model_copy(update={"validation": None, "test": None, "validation_size": 0.0,
                                        "test_size": 0.0, "max_train_rows": None})
        texts = {"text": data.text_column, "text_pair": data.text_pair_column if self.pair else None}
        rows = load_labelled(whole, texts, data.label_column, seed=0, categorical=False)[0]["train"]
        return _numeric(rows, columns)

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        features = encode_texts(rows, tokenizer, cfg.max_length, self.pair)
        if "label" in rows:
            scaled = (_gold(rows, len(self.targets)) - self.mean) / self.std
            for f, y in zip(features, scaled.tolist(), strict=True):
                f["labels"] = y
        return features

    def collate(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        # problem_type "regression" tells transformers.pipeline to return the raw outputs (no softmax).
        return load_model(AutoModelForSequenceClassification, path, cfg, num_labels=len(self.targets),
                          id2label=dict(enumerate(self.targets)),
                          label2id={c: i for i, c in enumerate(self.targets)}, problem_type="regression")

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        pred, gold = model(**inputs).logits.float(), batch["labels"].float()
        if self.cfg.loss == "huber":  # delta 1: errors beyond one unit (one std when standardised) count linearly
            return torch.nn.functional.huber_loss(pred, gold)
        return torch.nn.functional.mse_loss(pred, gold)

    # -- evaluation and prediction ------------------------------------------------------------------
    def scores(self, model, tokenizer, features: list[dict], batch_size: int) -> np.ndarray:
        """(rows, targets) predictions in the targets' own units."""
        out = np.stack(model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision))
        return out.astype(np.float64).reshape(len(features), -1) * self.std + self.mean

    def finish(self, model, tokenizer, rows: pd.DataFrame, features: list[dict], batch_size: int) -> None:
        pass  # nothing is tuned on validation data after training

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        pred = self.scores(model, tokenizer, features, batch_size)
        metrics = regression_metrics(pred, _gold(rows, len(self.targets)), self.targets)
        records = self._records(rows, pred)
        return metrics, add_gold(records, rows)

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        features = encode_unlabelled(self, rows, tokenizer)
        return self._records(rows, self.scores(model, tokenizer, features, batch_size))

    def _records(self, rows: pd.DataFrame, pred: np.ndarray) -> list[dict]:
        out = text_records(rows, self.pair)
        for record, p in zip(out, pred, strict=True):
            values = [round(float(v), 6) for v in p]
            if len(values) == 1:
                record["score"] = values[0]
            else:
                record["scores"] = dict(zip(self.targets, values, strict=True))
        return out

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "targets": self.targets, "pair": self.pair, "max_length": self.max_length,
                "mean": self.mean.tolist(), "std": self.std.tolist(), "loss": self.cfg.loss}

    @classmethod
    def from_state(cls, state: dict) -> Regression:
        cfg = TaskConfig(name=cls.name, loss=state["loss"])
        return cls(cfg, targets=state["targets"], pair=state["pair"], max_length=state["max_length"],
                   mean=state["mean"], std=state["std"])


def _columns(label_column: Column | list[Column]) -> list[Column]:
    return list(label_column) if isinstance(label_column, list) else [label_column]


def _numeric(rows: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Label cells as floats (one target) or lists of floats (several); anything else names its cell."""
    values = []
    for row, cell in rows["label"].items():
        cells = cell if isinstance(cell, list) else [cell]
        if len(cells) != len(columns):
            raise DataError(f"expected {len(columns)} number(s), got {cell!r}", file=file_label(rows), row=row,
                            column=columns[0])
        numbers = [_number(v, rows, row, col) for v, col in zip(cells, columns, strict=True)]
        values.append(numbers[0] if len(columns) == 1 else numbers)
    out = rows.copy()
    out["label"] = pd.Series(values, index=rows.index, dtype=object)
    return out


def _number(value: object, rows: pd.DataFrame, row: int, column: Column) -> float:
    number = as_number(value)
    if number is None:
        raise DataError(f"target {value!r} is not a number; regression needs a numeric value in every row",
                        file=file_label(rows), row=row, column=column)
    return number


def _gold(rows: pd.DataFrame, n_targets: int) -> np.ndarray:
    return np.array(rows["label"].tolist(), dtype=np.float64).reshape(len(rows), n_targets)
