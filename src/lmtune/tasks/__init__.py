"""Task registry: config name → task class. A new task is one module plus one line here."""

from __future__ import annotations

import json
from pathlib import Path

from lmtune.config import Config, TaskConfig
from lmtune.errors import ConfigError, UserError
from lmtune.tasks.base import Task, TaskSettings
from lmtune.tasks.classification import Classification
from lmtune.tasks.clm import CausalLM
from lmtune.tasks.distillation import Distillation
from lmtune.tasks.mlm import MaskedLM
from lmtune.tasks.question_answering import QuestionAnswering
from lmtune.tasks.regression import Regression
from lmtune.tasks.setfit import SetFit
from lmtune.tasks.sft import SFT
from lmtune.tasks.token_classification import TokenClassification

TASKS: dict[str, type[Task]] = {
    Classification.name: Classification,
    CausalLM.name: CausalLM,
    Distillation.name: Distillation,
    QuestionAnswering.name: QuestionAnswering,
    Regression.name: Regression,
    SetFit.name: SetFit,
    MaskedLM.name: MaskedLM,
    TokenClassification.name: TokenClassification,
    SFT.name: SFT,
}


def task_class(name: str) -> type[Task]:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASKS))}") from None


def task_type(name: str) -> type[Task]:
    """The task class of a run's task name, or `Task` itself (no task-specific facts, every hook at its default)
    for a name this version does not know: reports still build for runs of other versions."""
    return TASKS.get(name, Task)


def task_settings(section: TaskConfig) -> TaskSettings:
    """The named task's settings from a task section: its keys checked (a ConfigError names a wrong or unknown
    one), the defaults filled in."""
    cls = task_class(section.name)
    return cls.settings_from(_own_keys(cls, section.model_dump()))


def checked_config(cfg: Config) -> Config:
    """`cfg` with its task section checked and the task's defaults written in, as the run saves it (config.yaml):
    the recipe and tuning call it first, so a wrong or misspelt task key fails before any data is read."""
    return cfg.model_copy(update={"task": TaskConfig(**task_settings(cfg.task).model_dump())})


def new_task(cfg: Config) -> Task:
    return task_class(cfg.task.name)(task_settings(cfg.task))


def _own_keys(cls: type[Task], section: dict) -> dict:
    """The section less the keys another task declares, where they hold that task's default: configs saved before
    each task declared its own settings (an older run's config.yaml) list every task's keys, which never applied
    to the others. Such a key set to anything else still fails, as a key this task does not know."""
    others = {key: field.default for other in TASKS.values() if other is not cls
              for key, field in other.Settings.model_fields.items() if key not in TaskConfig.model_fields}
    return {key: value for key, value in section.items() if key not in others or value != others[key]}


def saved_task(model_dir: str | Path) -> Task:
    """The task a trained lmtune model was saved with (model/lmtune.json)."""
    path = Path(model_dir) / "lmtune.json"
    if not path.exists():
        raise UserError(f"{model_dir} was not trained by lmtune (no lmtune.json): pass an lmtune run or model")
    state = json.loads(path.read_text(encoding="utf-8"))
    return task_class(state["task"]).from_state(state)
