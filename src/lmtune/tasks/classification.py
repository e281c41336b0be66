"""Text classification: binary, multi-class, multi-label (sigmoid + threshold) and sentence pairs."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from transformers import AutoModelForSequenceClassification

from lmtune.config import DataConfig, ModelConfig, TaskConfig
from lmtune.data import check_labels_seen
from lmtune.evaluation import intervals
from lmtune.evaluation.classification import (
    MATRIX_LIMIT,
    best_threshold,
    multi_label_metrics,
    single_label_metrics,
)
from lmtune.models.load import load_model
from lmtune.tasks.text_inputs import TextSettings, TextTask

TOP_PROBABILITIES = 10


class Classification(TextTask):
    name: ClassVar[str] = "classification"
    categorical: ClassVar[bool] = True
    has_baselines: ClassVar[bool] = True
    higher_is_better = True

    class Settings(TextSettings):
        multi_label: bool | None = Field(None, description="None = detect from the labels.")
        threshold: float | Literal["tune"] = Field(
            0.5, description="Multi-label decision threshold on sigmoid scores; 'tune' = best micro-F1 on validation.")
        class_weights: Literal["none", "balanced"] = "none"
        lstm_baseline: bool = Field(False, description="With task.baselines on: also train a BiLSTM from scratch on "
                                    "the training split (random embeddings, a few epochs on CPU, seconds to a "
                                    "minute) and report the model's lift over it: what pretraining adds beyond word "
                                    "order.")
        self_training_rounds: int = Field(2, ge=1, description="With data.unlabelled: rounds of pseudo-labelling "
                                          "the unlabelled rows with the last round's model and retraining.")
        pseudo_label_threshold: float = Field(0.9, gt=0, lt=1, description="With data.unlabelled: the least "
                                              "predicted probability for an unlabelled row to join training.")

    def __init__(self, cfg: TaskConfig | dict | None = None, labels: list[str] | None = None, pair: bool = False,
                 max_length: int = 256):
        super().__init__(cfg, pair, max_length)
        self.labels = labels or []
        self.multi_label = self.cfg.multi_label
        self.threshold = self.cfg.threshold if isinstance(self.cfg.threshold, float) else 0.5
        self.weights: list[float] | None = None

    @property
    def metric(self) -> str:
        return "f1_micro" if self.multi_label else "accuracy"

    # -- data ---------------------------------------------------------------------------------------
    def learn_labels(self, data: DataConfig, splits: dict[str, pd.DataFrame]) -> dict:
        """The label set (and class weights) of the training rows; every other split's labels among them."""
        train = splits["train"]
        if self.multi_label is None:
            self.multi_label = bool(data.label_separator) or isinstance(train["label"].iloc[0], list)
        counts = Counter(x for v in train["label"] for x in (v if self.multi_label else [v]))
        self.labels = sorted(counts, key=_label_order)
        if self.cfg.class_weights == "balanced":
            n = sum(counts.values())
            self.weights = [n / (len(counts) * counts[c]) for c in self.labels]
        for split, rows in splits.items():
            if split != "train":
                check_labels_seen(set(self.labels), rows)
        return {"labels": {c: counts[c] for c in self.labels}}

    def labelled_rows(self, rows: pd.DataFrame, label_column, known: bool = False) -> pd.DataFrame:
        if known:
            check_labels_seen(set(self.labels), rows)
        return rows

    def loss_labels(self, rows: pd.DataFrame) -> list:
        index = {c: i for i, c in enumerate(self.labels)}
        if not self.multi_label:
            return [index[v] for v in rows["label"]]
        return [[float(c in set(v)) for c in self.labels] for v in rows["label"]]

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        problem = "multi_label_classification" if self.multi_label else "single_label_classification"
        return load_model(AutoModelForSequenceClassification, path, cfg, num_labels=len(self.labels),
                          id2label=dict(enumerate(self.labels)),
                          label2id={c: i for i, c in enumerate(self.labels)}, problem_type=problem)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits.float()
        weight = torch.tensor(self.weights, device=logits.device) if self.weights else None
        if self.multi_label:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"].float(),
                                                                        pos_weight=weight)
        return torch.nn.functional.cross_entropy(logits, batch["labels"], weight=weight)

    # -- evaluation and prediction ------------------------------------------------------------------
    def from_logits(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities: sigmoid per label (multi-label), else softmax."""
        if self.multi_label:
            return 1 / (1 + np.exp(-logits))
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def finish(self, model, tokenizer, rows: pd.DataFrame, features: list[dict], batch_size: int) -> bool:
        if not (self.multi_label and self.cfg.threshold == "tune"):
            return False
        probs = self.predictions(model, tokenizer, features, batch_size)
        self.threshold = best_threshold(probs, np.array([f["labels"] for f in features]))
        return True

    def metrics_of(self, probs: np.ndarray, rows: pd.DataFrame, features: list[dict]) -> dict:
        gold = np.array([f["labels"] for f in features])
        if self.multi_label:
            return multi_label_metrics(probs, gold, self.labels, self.threshold)
        return single_label_metrics(probs, gold, self.labels)

    def outputs_of(self, raw: np.ndarray) -> dict:
        """The row's label(s) and probabilities; beyond MATRIX_LIMIT classes only the TOP_PROBABILITIES most
        likely ones, as `top_probabilities` (all 10,000 of a 10,000-class file made a 400 MB predictions file)."""
        p = raw.round(6)
        out: dict = {}
        if self.multi_label:
            out["labels"] = [self.labels[i] for i in np.flatnonzero(p >= self.threshold)]
        else:
            best = int(raw.argmax())  # unrounded: the rounding must not decide between near-equal classes
            out["label"], out["score"] = self.labels[best], float(p[best])
        every = len(self.labels) <= MATRIX_LIMIT
        shown = range(len(p)) if every else np.argsort(-p, kind="stable")[:TOP_PROBABILITIES]
        out["probabilities" if every else "top_probabilities"] = {self.labels[i]: float(p[i]) for i in shown}
        return out

    def score_for(self, record: dict):
        """The predicted class's probability; for multi-label rows, that of the most likely label."""
        if "label" in record:
            target = self.labels.index(record["label"])
        else:
            shown = record.get("probabilities") or record["top_probabilities"]
            target = self.labels.index(max(shown, key=shown.get))

        def score(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
            logits = model(**inputs).logits.float()
            return (logits.sigmoid() if self.multi_label else logits.softmax(-1))[:, target]

        return score

    @staticmethod
    def interval_data(records: list[dict]) -> intervals.PerExample | None:
        if "label" in records[0]:
            return intervals.accuracy(records)
        if "labels" in records[0]:
            return intervals.micro_f1("f1_micro", [set(r["labels"]) for r in records],
                                      [set(r["gold"]) for r in records])
        return None

    @classmethod
    def describe(cls, state: dict) -> str:
        labels = ", ".join(map(str, state.get("labels") or [])) or "its training labels"
        return f"Assigns a text {'one or more' if state.get('multi_label') else 'one'} of the labels: {labels}"

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "labels": self.labels, "multi_label": self.multi_label,
                "threshold": self.threshold, "pair": self.pair, "max_length": self.max_length}

    @classmethod
    def from_state(cls, state: dict) -> Classification:
        return cls({"multi_label": state["multi_label"], "threshold": state["threshold"]}, labels=state["labels"],
                   pair=state["pair"], max_length=state["max_length"])


def _label_order(label: str):
    """Numeric labels sort as numbers (0, 1, 2, 10), others alphabetically: stable ids across runs."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
