"""The Train page's form and its YAML/command: everything the config accepts, and the command means the same run."""

from __future__ import annotations

import shlex

import pytest
import yaml
from conftest import lmtune

from lmtune import recipe
from lmtune.config import Config, build_config
from lmtune.errors import UserError
from lmtune.tasks import TASKS, checked_config
from lmtune.ui.schema import as_command, as_yaml, form

VALUES = {"name": "my run", "task": {"name": "classification", "threshold": "tune", "class_weights": "balanced"},
          "data": {"train": "data/a b.csv", "validation": "dev.csv", "text_column": 0, "label_column": ["x", "y"],
                   "max_length": 64, "lowercase": True, "header": None},
          "model": {"name": "minilm", "dropout": 0.2},
          "method": {"name": "lora", "lora_target_modules": ["query", "value"], "lora_r": 4},
          "train": {"lr": 3e-5, "max_steps": 10, "warmup": 0.1, "max_grad_norm": None, "scheduler": "cosine"}}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_form_offers_every_key_the_config_accepts(task):
    keys = {f["key"] for s in form(task)["sections"] for f in s["fields"]}
    full = checked_config(build_config({"task": {"name": task}})).model_dump()
    expected = {f"{section}.{key}" for section, values in full.items() if isinstance(values, dict)
                for key in values} - {"task.name"}
    assert expected <= keys and "name" in keys
    assert {k for k in keys if "." in k} <= expected, "the form shows a key the config does not have"


def test_fields_carry_their_default_help_and_choices():
    fields = {f["key"]: f for s in form("classification")["sections"] for f in s["fields"]}
    assert fields["train.lr"]["kind"] == "number" and fields["train.lr"]["default"] == Config().train.lr
    assert "Peak learning rate" in fields["train.lr"]["help"]
    assert fields["train.scheduler"]["kind"] == "choice" and "cosine" in fields["train.scheduler"]["choices"]
    assert fields["train.max_steps"]["nullable"] and fields["train.max_steps"]["kind"] == "integer"
    assert fields["task.threshold"]["choices"] == ["tune"]  # a number, or the word tune
    assert fields["method.lora_target_modules"]["kind"] == "array"


def test_the_yaml_is_the_values_and_loads_as_the_same_config():
    assert build_config(yaml.safe_load(as_yaml(VALUES))) == build_config(VALUES)


def test_the_command_trains_exactly_the_config_the_form_shows(monkeypatch, capsys):
    """The command line the page shows, run through the real CLI, reaches training with the same config."""
    seen = {}

    def captured(cfg, resume=False):
        seen["cfg"] = cfg
        raise UserError("captured")

    monkeypatch.setattr(recipe, "train", captured)
    command = as_command(VALUES)
    assert "--data 'data/a b.csv'" in command and "--set train.max_grad_norm=null" in command
    code, _, err = lmtune(monkeypatch, capsys, *shlex.split(command)[1:])
    assert code == 2 and "captured" in err
    assert seen["cfg"].model_dump() == build_config(VALUES).model_dump()
