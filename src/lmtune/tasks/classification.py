"""Text classification: binary, multi-class, multi-label (sigmoid + threshold) and sentence pairs."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from lmtune.config import Config, DataConfig, ModelConfig, TaskConfig
from lmtune.data import check_labels_seen, load_labelled
from lmtune.evaluation.classification import (
    MATRIX_LIMIT,
    best_threshold,
    multi_label_metrics,
    single_label_metrics,
)
from lmtune.evaluation.inference import model_outputs
from lmtune.models.load import load_model
from lmtune.tasks.text_inputs import add_gold, encode_texts, encode_unlabelled, load_texts, text_records

TOP_PROBABILITIES = 10


class Classification:
    name: ClassVar[str] = "classification"
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    input_fields: ClassVar[tuple[str, ...]] = ("text", "text_pair")

    def __init__(self, cfg: TaskConfig, labels: list[str] | None = None, pair: bool = False,
                 max_length: int = 256):
        self.cfg, self.labels, self.pair, self.max_length = cfg, labels or [], pair, max_length
        self.multi_label = cfg.multi_label
        self.threshold = cfg.threshold if isinstance(cfg.threshold, float) else 0.5
        self.weights: list[float] | None = None
        self.precision = "auto"

    @property
    def metric(self) -> str:
        return "f1_micro" if self.multi_label else "accuracy"

    higher_is_better = True

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        splits, report = load_texts(cfg, categorical=True)
        return splits, {**report, **self.learn(cfg, splits)}

    def learn(self, cfg: Config, splits: dict[str, pd.DataFrame]) -> dict:
        """Learn the label set (and class weights) from splits already read: apart from load(), cross-validation
        calls it once per fold, so each fold's model knows only its own training rows' labels."""
        d = cfg.data
        self.pair, self.max_length = d.text_pair_column is not None, d.max_length
        train = splits["train"]
        if self.multi_label is None:
            self.multi_label = bool(d.label_separator) or isinstance(train["label"].iloc[0], list)
        counts = Counter(x for v in train["label"] for x in (v if self.multi_label else [v]))
        self.labels = sorted(counts, key=_label_order)
        if self.cfg.class_weights == "balanced":
            n = sum(counts.values())
            self.weights = [n / (len(counts) * counts[c]) for c in self.labels]
        for split, rows in splits.items():
            if split != "train":
                check_labels_seen(set(self.labels), rows)
        return {"labels": {c: counts[c] for c in self.labels}}

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        """One labelled file, unsplit, checked against the labels the model knows."""
        whole = data.model_copy(update={"validation": None, "test": None, "validation_size": 0.0,
                                        "test_size": 0.0, "max_train_rows": None})
        texts = {"text": data.text_column, "text_pair": data.text_pair_column if self.pair else None}
        rows = load_labelled(whole, texts, data.label_column, seed=0)[0]["train"]
        check_labels_seen(set(self.labels), rows)
        return rows

    def _targets(self, labels: pd.Series) -> list:
        index = {c: i for i, c in enumerate(self.labels)}
        if not self.multi_label:
            return [index[v] for v in labels]
        return [[float(c in set(v)) for c in self.labels] for v in labels]

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        features = encode_texts(rows, tokenizer, cfg.max_length, self.pair)
        if "label" in rows:
            for f, y in zip(features, self._targets(rows["label"]), strict=True):
                f["labels"] = y
        return features

    def collate(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

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
    def probabilities(self, model, tokenizer, features: list[dict], batch_size: int) -> np.ndarray:
        logits = np.stack(model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision))
        # float64: sklearn checks that probabilities sum to 1 tighter than float32 rounding allows
        logits = logits.astype(np.float64).reshape(len(features), -1)
        if self.multi_label:
            return 1 / (1 + np.exp(-logits))
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def finish(self, model, tokenizer, rows: pd.DataFrame, features: list[dict], batch_size: int) -> bool:
        if not (self.multi_label and self.cfg.threshold == "tune"):
            return False
        probs = self.probabilities(model, tokenizer, features, batch_size)
        self.threshold = best_threshold(probs, np.array([f["labels"] for f in features]))
        return True

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        probs = self.probabilities(model, tokenizer, features, batch_size)
        gold = np.array([f["labels"] for f in features])
        if self.multi_label:
            metrics = multi_label_metrics(probs, gold, self.labels, self.threshold)
        else:
            metrics = single_label_metrics(probs, gold, self.labels)
        records = self._records(rows, probs)
        return metrics, add_gold(records, rows)

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        features = encode_unlabelled(self, rows, tokenizer)
        return self._records(rows, self.probabilities(model, tokenizer, features, batch_size))

    def _records(self, rows: pd.DataFrame, probs: np.ndarray) -> list[dict]:
        """Each row's label(s) and probabilities; beyond MATRIX_LIMIT classes only the TOP_PROBABILITIES most
        likely ones, as `top_probabilities` (all 10,000 of a 10,000-class file made a 400 MB predictions file)."""
        out = text_records(rows, self.pair)
        every = len(self.labels) <= MATRIX_LIMIT
        for record, raw, p in zip(out, probs, probs.round(6), strict=True):
            if self.multi_label:
                record["labels"] = [self.labels[i] for i in np.flatnonzero(p >= self.threshold)]
            else:
                best = int(raw.argmax())  # unrounded: the rounding must not decide between near-equal classes
                record["label"], record["score"] = self.labels[best], float(p[best])
            shown = range(len(p)) if every else np.argsort(-p, kind="stable")[:TOP_PROBABILITIES]
            record["probabilities" if every else "top_probabilities"] = {self.labels[i]: float(p[i]) for i in shown}
        return out

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "labels": self.labels, "multi_label": self.multi_label,
                "threshold": self.threshold, "pair": self.pair, "max_length": self.max_length}

    @classmethod
    def from_state(cls, state: dict) -> Classification:
        cfg = TaskConfig(name=cls.name, multi_label=state["multi_label"], threshold=state["threshold"])
        return cls(cfg, labels=state["labels"], pair=state["pair"], max_length=state["max_length"])


def _label_order(label: str):
    """Numeric labels sort as numbers (0, 1, 2, 10), others alphabetically: stable ids across runs."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
