"""Regression: one or more numeric targets per text or sentence pair (e.g. STS-B similarity scores)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from transformers import AutoModelForSequenceClassification

from lmtune.config import Column, DataConfig, ModelConfig, TaskConfig
from lmtune.data.clean import as_number
from lmtune.data.readers import file_label
from lmtune.errors import ConfigError, DataError
from lmtune.evaluation import intervals
from lmtune.evaluation.regression import regression_metrics
from lmtune.models.load import load_model
from lmtune.tasks.text_inputs import TextSettings, TextTask


class Regression(TextTask):
    name: ClassVar[str] = "regression"
    categorical: ClassVar[bool] = False
    purpose: ClassVar[str] = "Predicts a numeric score for a text"
    # A one-output head read through the text-classification pipeline would otherwise get a sigmoid.
    pipeline_kwargs: ClassVar[dict[str, str]] = {"function_to_apply": "none"}
    # Pearson is scale-free, so the mean over targets in different units still means something, and it is
    # the number STS-B reports; MSE (reported beside it) would let the widest-ranged target dominate.
    metric = "pearson"
    higher_is_better = True

    class Settings(TextSettings):
        loss: Literal["mse", "huber"] = Field("mse", description="Regression loss.")
        standardize_targets: bool = Field(False, description="Train on targets standardised with the training "
                                          "mean/std; predictions are mapped back to the original units.")

    def __init__(self, cfg: TaskConfig | dict | None = None, targets: list[str] | None = None, pair: bool = False,
                 max_length: int = 256, mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__(cfg, pair, max_length)
        self.targets = targets or []
        # Training runs on (y - mean) / std; predictions are mapped back. mean 0 / std 1 = no scaling.
        self.mean = np.array(mean if mean is not None else [0.0] * len(self.targets))
        self.std = np.array(std if std is not None else [1.0] * len(self.targets))

    # -- data ---------------------------------------------------------------------------------------
    def learn_labels(self, data: DataConfig, splits: dict[str, pd.DataFrame]) -> dict:
        """The target scaling of the training rows (numeric labels), so no fold's scaling sees its held-out rows."""
        columns = _columns(data.label_column)
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

    def labelled_rows(self, rows: pd.DataFrame, label_column: Column | list[Column],
                      known: bool = False) -> pd.DataFrame:
        """Numeric labels; `known`: as many target columns as the model predicts."""
        columns = _columns(label_column)
        if known and len(columns) != len(self.targets):
            raise ConfigError(f"data.label_column names {len(columns)} column(s) but the model predicts "
                              f"{len(self.targets)} target(s) ({', '.join(self.targets)})")
        return _numeric(rows, columns)

    def loss_labels(self, rows: pd.DataFrame) -> list:
        return ((_gold(rows, len(self.targets)) - self.mean) / self.std).tolist()

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
    def from_logits(self, logits: np.ndarray) -> np.ndarray:
        """(rows, targets) predictions in the targets' own units."""
        return logits * self.std + self.mean

    def metrics_of(self, pred: np.ndarray, rows: pd.DataFrame, features: list[dict]) -> dict:
        return regression_metrics(pred, _gold(rows, len(self.targets)), self.targets)

    def outputs_of(self, pred: np.ndarray) -> dict:
        values = [round(float(v), 6) for v in pred]
        if len(values) == 1:
            return {"score": values[0]}
        return {"scores": dict(zip(self.targets, values, strict=True))}

    def score_for(self, record: dict):
        """The predicted score, in the target's own units (one target only)."""
        if len(self.targets) != 1:
            return None
        mean, std = float(self.mean[0]), float(self.std[0])
        return lambda model, inputs: model(**inputs).logits.float()[:, 0] * std + mean

    @staticmethod
    def interval_data(records: list[dict]) -> intervals.PerExample | None:
        return intervals.pearson(records) if "score" in records[0] else None

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "targets": self.targets, "pair": self.pair, "max_length": self.max_length,
                "mean": self.mean.tolist(), "std": self.std.tolist(), "loss": self.cfg.loss}

    @classmethod
    def from_state(cls, state: dict) -> Regression:
        return cls({"loss": state["loss"]}, targets=state["targets"], pair=state["pair"],
                   max_length=state["max_length"], mean=state["mean"], std=state["std"])


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
