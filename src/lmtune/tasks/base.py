"""The seam between the generic pipeline and one task.

A task reads its data into canonical columns, builds its model head, tokenises, scores a batch, evaluates
and predicts. The trainer sees only what `Objective` carries; the API only calls this protocol.
Tasks that support cross-validation (classification, regression) also have `learn(cfg, splits) -> report`:
load()'s second half, learning labels/scaling from train rows that were already read and split elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import pandas as pd
import torch

from lmtune.config import Config, DataConfig, ModelConfig

Features = list[dict[str, Any]]  # tokenised examples: input_ids, attention_mask, ..., labels


class Task(Protocol):
    name: ClassVar[str]
    peft_task_type: ClassVar[str]  # PEFT's TaskType name, so LoRA keeps the right head trainable
    input_fields: ClassVar[tuple[str, ...]]  # what one prediction input may hold (a bare string is "text")
    metric: str  # validation metric for best model / early stopping
    higher_is_better: bool

    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        """Read, validate and split the data; learn what the task needs from the training rows."""

    def read_eval(self, cfg: DataConfig) -> pd.DataFrame:
        """One labelled file, unsplit and checked against what the trained model knows (`lmtune evaluate`)."""

    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module: ...

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> Features: ...

    def collate(self, tokenizer) -> Callable[[Features], dict[str, torch.Tensor]]: ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def evaluate(self, model: torch.nn.Module, tokenizer, rows: pd.DataFrame, features: Features,
                 batch_size: int) -> tuple[dict, list[dict]]:
        """Metrics and one prediction record per row (with the gold value) for predictions.jsonl."""

    def finish(self, model: torch.nn.Module, tokenizer, rows: pd.DataFrame, features: Features,
               batch_size: int) -> bool | None:
        """Fit what is chosen after training on validation data (e.g. a decision threshold); True when that
        changed what the model predicts."""

    def predict(self, model: torch.nn.Module, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """Task-shaped outputs for unlabelled rows in the task's canonical columns."""

    def state(self) -> dict:
        """What predict() needs later, saved as model/lmtune.json."""

    @classmethod
    def from_state(cls, state: dict) -> Task: ...

