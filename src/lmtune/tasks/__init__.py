"""Task registry: config name → task class. A new task is one module plus one line here."""

from __future__ import annotations

import json
from pathlib import Path

from lmtune.config import Config
from lmtune.errors import ConfigError, UserError
from lmtune.tasks.base import Task
from lmtune.tasks.classification import Classification
from lmtune.tasks.clm import CausalLM
from lmtune.tasks.mlm import MaskedLM
from lmtune.tasks.question_answering import QuestionAnswering
from lmtune.tasks.regression import Regression
from lmtune.tasks.sft import SFT
from lmtune.tasks.token_classification import TokenClassification

TASKS: dict[str, type] = {
    Classification.name: Classification,
    CausalLM.name: CausalLM,
    QuestionAnswering.name: QuestionAnswering,
    Regression.name: Regression,
    MaskedLM.name: MaskedLM,
    TokenClassification.name: TokenClassification,
    SFT.name: SFT,
}


def task_class(name: str) -> type:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASKS))}") from None


def new_task(cfg: Config) -> Task:
    return task_class(cfg.task.name)(cfg.task)


def saved_task(model_dir: str | Path) -> Task:
    """The task a trained lmtune model was saved with (model/lmtune.json)."""
    path = Path(model_dir) / "lmtune.json"
    if not path.exists():
        raise UserError(f"{model_dir} was not trained by lmtune (no lmtune.json): pass an lmtune run or model")
    state = json.loads(path.read_text(encoding="utf-8"))
    return task_class(state["task"]).from_state(state)
