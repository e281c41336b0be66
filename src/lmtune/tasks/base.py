"""The seam between the generic pipeline and one task: `Task` declares every member the pipeline uses.

A task reads its data into canonical columns, builds its model head, tokenises, scores a batch, evaluates
and predicts; the trainer sees only what `Objective` carries. Members each task must define raise
NotImplementedError here. Optional hooks default to "nothing to do", and the facts other layers ask about a
task (its model card's pipeline, its ONNX outputs, its interval statistic, ...) are class attributes, so the
pipeline calls them without asking which task it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pandas as pd
import torch
from pydantic import ConfigDict

from lmtune.config import Config, DataConfig, ModelConfig, TaskConfig, validate_section
from lmtune.errors import ConfigError
from lmtune.evaluation.intervals import PerExample

Features = list[dict[str, Any]]  # tokenised examples: input_ids, attention_mask, ..., labels


class TaskSettings(TaskConfig):
    """A task's own keys of the config's task section, declared in its module as `Task.Settings`: the section is
    checked against them when the task is made, so a misspelt or invalid key names itself."""

    model_config = ConfigDict(extra="forbid")


class Task:
    # -- what the task is (class attributes) -------------------------------------------------------------
    name: ClassVar[str]
    Settings: ClassVar[type[TaskSettings]] = TaskSettings
    peft_task_type: ClassVar[str]  # PEFT's TaskType name, so LoRA keeps the right head trainable
    input_fields: ClassVar[tuple[str, ...]]  # what one prediction input may hold (a bare string is "text")
    model_kind: ClassVar[str] = "encoder"  # "decoder": trains a causal LM, which generate and chat can load
    has_baselines: ClassVar[bool] = False  # cheap baselines are scored beside the model (task.baselines)
    purpose: ClassVar[str] = "Makes predictions"  # what the trained model does, for its model card
    pipeline_tag: ClassVar[str | None] = None  # the transformers pipeline that loads the saved model
    pipeline_kwargs: ClassVar[dict[str, str]] = {}  # what that pipeline must be told to read the outputs right
    onnx_outputs: ClassVar[tuple[str, ...] | None] = None  # model outputs an ONNX graph returns; None: no export

    # -- what one task holds ----------------------------------------------------------------------------
    metric: str  # validation metric for best model / early stopping
    higher_is_better: bool
    cfg: TaskSettings
    max_length: int
    labels: Sequence[str] = ()  # the classes or tags the model outputs, where it has any
    pair = False  # the inputs are text pairs (the text_pair column)
    system: str | None = None  # the system message generation starts from
    precision = "auto"  # set by the pipeline: the precision inference runs in
    virtual_tokens = 0  # set by the pipeline: soft-prompt positions the method prepends to every row

    def __init__(self, cfg: TaskConfig | dict | None = None):
        self.cfg = self.settings_from(cfg)

    @classmethod
    def settings_from(cls, section: TaskConfig | dict | None = None) -> TaskSettings:
        """The task's settings from a task section: its keys checked (a ConfigError names a wrong or unknown key,
        e.g. "task.threshold: ..."), the defaults filled in."""
        given = section.model_dump() if isinstance(section, TaskConfig) else dict(section or {})
        return validate_section(cls.Settings, {**given, "name": cls.name}, ("task",))

    # -- members each task defines ----------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        """Read, validate and split the data; learn what the task needs from the training rows."""
        raise NotImplementedError

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        """One labelled file, unsplit and checked against what the trained model knows (`lmtune evaluate`)."""
        raise NotImplementedError

    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        raise NotImplementedError

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> Features:
        """The rows' features. Leaves the task as it was: what else encoding finds goes to `encode_counted`."""
        raise NotImplementedError

    def collate(self, tokenizer) -> Callable[[Features], dict[str, torch.Tensor]]:
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, model: torch.nn.Module, tokenizer, rows: pd.DataFrame, features: Features,
                 batch_size: int) -> tuple[dict, list[dict]]:
        """Metrics and one prediction record per row (with the gold value) for predictions.jsonl."""
        raise NotImplementedError

    def predict(self, model: torch.nn.Module, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """Task-shaped outputs for unlabelled rows in the task's canonical columns."""
        raise NotImplementedError

    def state(self) -> dict:
        """What predict() needs later, saved as model/lmtune.json."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict) -> Task:
        raise NotImplementedError

    # -- optional hooks, each with the default that means "nothing to do" ---------------------------------
    def learn(self, cfg: Config, splits: dict[str, pd.DataFrame]) -> dict:
        """load()'s second half, on splits read elsewhere (cross-validation folds): learn labels or scaling from
        the training rows and return their part of the data report."""
        raise ConfigError(f"task {self.name!r} cannot train on given splits (cross-validation supports "
                          "classification and regression)")

    def prepare_tokenizer(self, tokenizer) -> None:
        """What encoding needs changed in the tokenizer, done apart so that features from the token cache (no
        encode) get it too."""

    def encode_counted(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> tuple[Features, dict[str, int]]:
        """encode(), and counts of what fitting the rows into data.max_length did to them (sft: chats truncated
        or dropped), summed over the splits into the data report's `length_limit`; none by default."""
        return self.encode(rows, tokenizer, cfg), {}

    def prepare_train(self, features: Features) -> Features:
        """Training-only reshaping of the examples (sft: packing); evaluation never sees it."""
        return features

    def loss_units(self, batch: dict[str, torch.Tensor]) -> int:
        """What loss() is a mean over, for splitting a batch into weighted micro-batches: rows by default."""
        return len(batch["input_ids"])

    def finish(self, model: torch.nn.Module, tokenizer, rows: pd.DataFrame, features: Features,
               batch_size: int) -> bool:
        """Fit what is chosen after training on validation data (e.g. a decision threshold); True when that
        changed what the model predicts."""
        return False

    @staticmethod
    def interval_data(records: list[dict]) -> PerExample | None:
        """The prediction records reduced to what the headline metric's bootstrap interval resamples
        (lmtune.evaluation.intervals); None: no interval."""
        return None

    @property
    def explained_rows(self) -> int:
        """How many rows the report explains with token attributions (score_for); 0: none."""
        return 0

    def score_for(self, record: dict) -> Callable[[torch.nn.Module, dict], torch.Tensor] | None:
        """The number a prediction record rests on, as a function of the model and a batch of inputs (one value per
        row), for token attributions (lmtune explain); None: no single number to explain."""
        return None

    @classmethod
    def describe(cls, state: dict) -> str:
        """What a model saved with `state` (its lmtune.json) does, for its model card."""
        return cls.purpose

    @property
    def reads_pairs(self) -> bool:
        """The model reads two sequences per input: what an ONNX export probes it with."""
        return self.pair
