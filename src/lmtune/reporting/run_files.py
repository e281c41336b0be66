"""The files a run wrote, read back leniently: a report is rebuilt from whatever a run left behind."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lmtune.errors import UserError
from lmtune.io import read_jsonl
from lmtune.tasks import Task, task_type


@dataclass
class RunFiles:
    path: Path
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    model_state: dict = field(default_factory=dict)  # model/lmtune.json: task, labels, base model

    @property
    def task(self) -> str:
        return self.metrics.get("task") or self.model_state.get("task") or self.section("task").get("name", "")

    @property
    def task_type(self) -> type[Task]:
        """The run's task class, for what the report and model card ask of the task (`Task` when unknown)."""
        return task_type(self.task)

    @property
    def predictions_split(self) -> str:
        """Training writes predictions for the last split it evaluated: test when there is one."""
        return "test" if isinstance(self.metrics.get("test"), dict) else "validation"

    @property
    def eval_splits(self) -> list[str]:
        return [s for s in ("validation_before", "validation", "test") if isinstance(self.metrics.get(s), dict)]

    def section(self, name: str) -> dict:
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}


def read_run(path: str | Path) -> RunFiles:
    path = Path(path)
    if not (path / "metrics.json").exists() and not (path / "config.yaml").exists():
        raise UserError(f"{path} is not an lmtune run folder (no metrics.json or config.yaml)")
    config = _yaml(path / "config.yaml")
    return RunFiles(path, config=config if isinstance(config, dict) else {}, metrics=_json(path / "metrics.json"),
                    log=read_jsonl(path / "train_log.jsonl"), predictions=read_jsonl(path / "predictions.jsonl"),
                    model_state=_json(path / "model" / "lmtune.json"))


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
