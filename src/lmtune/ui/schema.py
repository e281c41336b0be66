"""The Train page's form, read from the config schema, and what a form's values are as YAML and as a command.

The page holds only the keys the user set, as a nested dict in the config's shape; the YAML and the command it
shows are made from that dict, and the run starts from the same YAML, so the UI can set nothing the config
cannot express. Fields come from the pydantic models themselves: a new config key appears in the form with its
default and help text without touching the UI.
"""

from __future__ import annotations

import shlex
from typing import Any

import yaml
from pydantic import BaseModel

from lmtune.config import SHORTCUTS, Config, DataConfig, MethodConfig, ModelConfig, TrainConfig
from lmtune.tasks import TASKS, task_class

SECTIONS: dict[str, type[BaseModel]] = {"data": DataConfig, "model": ModelConfig, "method": MethodConfig,
                                        "train": TrainConfig}
FLAGS = {dotted: flag for flag, dotted in SHORTCUTS.items()}


def form(task: str) -> dict:
    """{"tasks": [...], "sections": [{"name", "fields": [field, ...]}]}: every key the config accepts for this
    task, each {"key" (dotted), "kind", "default", "help", "choices", "nullable"}."""
    task_settings = task_class(task).Settings
    # Of Config's own keys only the name: the UI's --runs folder is the output_dir.
    sections = [{"name": "run", "fields": [_field(Config, "name", "name")]},
                {"name": "task", "fields": [_field(task_settings, f"task.{key}", key)
                                            for key in task_settings.model_fields if key != "name"]}]
    sections += [{"name": name, "fields": [_field(model, f"{name}.{key}", key) for key in model.model_fields]}
                 for name, model in SECTIONS.items()]
    return {"tasks": sorted(TASKS), "sections": sections}


def _field(model: type[BaseModel], dotted: str, key: str) -> dict:
    info = model.model_fields[key]
    schema = model.model_json_schema()["properties"][key]
    options = schema.get("anyOf", [schema])
    kinds = [o.get("type") for o in options if o.get("type") != "null"]
    choices = [v for o in options for v in o.get("enum", ())] or ([o["const"] for o in options if "const" in o])
    kind = "choice" if choices and len(kinds) <= 1 else kinds[0] if len(kinds) == 1 else "text"
    return {"key": dotted, "kind": kind or "text", "default": info.default, "help": info.description or "",
            "choices": choices, "nullable": any(o.get("type") == "null" for o in options)}


def as_yaml(values: dict) -> str:
    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True)


def as_command(values: dict, verb: str = "train") -> str:
    """`lmtune train` with the values: shortcut flags where the CLI has one, --set for the rest."""
    parts = ["lmtune", verb]
    for dotted, value in _flat(values):
        text = _scalar(value)
        flag = FLAGS.get(dotted)
        parts += [f"--{flag.replace('_', '-')}", text] if flag else ["--set", f"{dotted}={text}"]
    return shlex.join(parts)


def _flat(values: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _scalar(value: Any) -> str:
    """The value as the CLI parses it back (config.parse_value reads YAML scalars)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)  # 3e-05, as a person writes it (YAML would write 3.0e-05)
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()
