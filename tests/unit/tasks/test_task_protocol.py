"""The task protocol: every task defines what the pipeline calls, reads and checks its own settings, declares
its facts (interval statistic, model kind, ...), and encodes without changing itself."""

from __future__ import annotations

import copy
import re
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoTokenizer

from lmtune.config import DECODER_TASKS, DataConfig, build_config, load_config
from lmtune.errors import ConfigError
from lmtune.evaluation import intervals
from lmtune.evaluation.intervals import metric_interval
from lmtune.tasks import TASKS, checked_config, new_task, task_type
from lmtune.tasks.base import Task

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
REQUIRED = ("load", "read_eval", "build_model", "encode", "collate", "loss", "evaluate", "predict", "state",
            "from_state")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_defines_what_the_pipeline_calls(name):
    cls = TASKS[name]
    assert cls.name == name and cls.peft_task_type and cls.input_fields
    assert [m for m in REQUIRED if getattr(cls, m) is getattr(Task, m)] == []


def test_the_configs_decoder_tasks_are_the_tasks_that_say_so():
    assert {name for name, cls in TASKS.items() if cls.model_kind == "decoder"} == set(DECODER_TASKS)


# -- each task reads its own config section ------------------------------------------------------------


@pytest.mark.parametrize(("task", "override", "named"), [
    ("classification", "task.threshold=sometimes", "task.threshold"),
    ("regression", "task.loss=absolute", "task.loss"),
    ("question-answering", "task.n_best=0", "task.n_best"),
    ("sft", "task.template=poetry", "task.template"),
])
def test_a_wrong_task_setting_names_its_key(task, override, named):
    cfg = build_config(overrides=[f"task.name={task}", override])  # the config itself lets task keys through
    for check in (checked_config, new_task):
        with pytest.raises(ConfigError, match=rf"\n  {re.escape(named)}\b"):
            check(cfg)


@pytest.mark.parametrize(("task", "override", "hint"), [
    ("classification", "task.treshold=0.3", "; did you mean 'task.threshold'?"),
    ("sft", "task.pakcing=true", "; did you mean 'task.packing'?"),
    ("mlm", "task.threshold=0.3", ""),  # classification's key, not the masked LM's
])
def test_an_unknown_task_key_is_named_with_the_nearest_one(task, override, hint):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=f"unknown key '{key}'") as err:
        checked_config(build_config(overrides=[f"task.name={task}", override]))
    assert str(err.value).endswith(f"'{key}'{hint}")


def test_the_checked_section_carries_the_tasks_defaults_and_round_trips():
    cfg = checked_config(build_config(overrides=["task.name=regression", "task.loss=huber"]))
    assert cfg.task.model_dump() == {"name": "regression", "baselines": True, "explanations": 10, "loss": "huber",
                                     "standardize_targets": False}
    assert checked_config(build_config(cfg.model_dump(mode="json"))) == cfg


def test_a_config_saved_with_every_tasks_keys_still_loads():
    """config.yaml of runs from before the tasks declared their own settings: one flat section, every key."""
    defaults = {name: cls.Settings().model_dump() for name, cls in TASKS.items()}
    flat = {k: v for section in defaults.values() for k, v in section.items()}
    cfg = checked_config(build_config({"task": {**flat, "name": "token-classification", "tag_decoding": "argmax"}}))
    assert cfg.task.model_dump() == {"name": "token-classification", "baselines": True, "tag_decoding": "argmax"}


def test_the_example_configs_pass_their_tasks_checks():
    for path in sorted(EXAMPLES.glob("**/*.yaml")):
        checked_config(load_config(path))


# -- intervals through the statistic each task declares -----------------------------------------------------


def test_an_interval_comes_from_the_statistic_the_task_declares():
    records = [{"f1": 1.0}] * 30 + [{"f1": 0.0}] * 10
    found = metric_interval(task_type("question-answering").interval_data, records)
    assert found["metric"] == "f1" and found["value"] == 0.75 and found["low"] < 0.75 < found["high"]

    class Judged(Task):  # a task added later: its own statistic, and no name list to extend anywhere
        interval_data = staticmethod(lambda records: intervals.mean_of("judge", records))

    assert metric_interval(Judged.interval_data, [{"judge": 0.5}, {"judge": 1.0}])["value"] == 0.75
    assert metric_interval(task_type("no-such-task").interval_data, records) is None  # Task: no statistic


# -- encoding leaves the task as it was --------------------------------------------------------------


CHAT = [{"role": "user", "content": "hello who are you"}, {"role": "assistant", "content": "I am a small model"}]
CASES = {
    "classification": ({"labels": ["bad", "good"]}, {"text": ["good food", "bad"], "label": ["good", "bad"]},
                       "bert", DataConfig(max_length=16)),
    "regression": ({"targets": ["score"]}, {"text": ["good food", "bad"], "label": [1.0, 0.0]}, "bert",
                   DataConfig(max_length=16)),
    "token-classification": ({"labels": ["O", "B-PER"]}, {"tokens": [["ann", "ran"] * 9], "tags": [["B-PER", "O"] * 9]},
                             "bert", DataConfig(max_length=9)),  # truncated: warns, changes nothing
    "sft": ({}, {"messages": [CHAT, CHAT * 6]}, "llama", DataConfig(max_length=40)),  # one chat truncated
    "mlm": ({}, {"text": ["the film was good", "bad food"]}, "bert", DataConfig(max_length=16)),
    "clm": ({}, {"text": ["the cat sat on the mat"] * 3}, "llama", DataConfig(max_length=16)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_encoding_twice_gives_the_same_features_and_leaves_the_task_as_it_was(name, tiny_bert, tiny_llama):
    extra, columns, which, data = CASES[name]
    task = TASKS[name](**extra)
    tokenizer = AutoTokenizer.from_pretrained({"bert": tiny_bert, "llama": tiny_llama}[which])
    task.prepare_tokenizer(tokenizer)
    rows = pd.DataFrame(columns, index=range(1, len(columns[next(iter(columns))]) + 1))
    before = copy.deepcopy(vars(task))
    with pytest.warns(UserWarning, match="longer than max_length") if name == "token-classification" else nullcontext():
        first = task.encode_counted(rows, tokenizer, data)
        second = task.encode_counted(rows, tokenizer, data)
        assert first[0] == task.encode(rows, tokenizer, data)
    assert repr(first) == repr(second) and repr(vars(task)) == repr(before)
    if name == "sft":
        assert first[1] == {"truncated": 1, "dropped": 0}

