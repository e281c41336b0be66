"""SFT of the real packaged SmolLM2-135M-Instruct on the real instruction data, for a few steps."""

from __future__ import annotations

import json

import pytest
from conftest import shared_file

from lmtune.api import train
from lmtune.generation.generate import Settings
from lmtune.trained.generator import load_generator

pytestmark = pytest.mark.slow


def test_lora_sft_on_identity_data_lowers_held_out_loss(tmp_path):
    rows = json.loads(shared_file("instruct/identity.json").read_text(encoding="utf-8"))[:40]
    for row in rows:
        row["output"] = row["output"].replace("{{name}}", "Tern").replace("{{author}}", "the lmtune team")
    (tmp_path / "identity.json").write_text(json.dumps(rows), encoding="utf-8")
    # The identity set is mostly Chinese, so with no model named lmtune would pick qwen2.5-coder-0.5b.
    run = train({"name": "id", "output_dir": str(tmp_path / "runs"), "model": {"name": "smollm2-135m"},
                 "task": {"name": "sft", "generate_samples": 2, "max_new_tokens": 12, "packing": False},
                 "data": {"train": str(tmp_path / "identity.json"), "validation_size": 0.2, "test_size": 0,
                          "max_length": 256},
                 "train": {"max_steps": 6, "batch_size": 4, "lr": 1e-3, "eval_before": True}})
    assert run.config.model.name == "smollm2-135m" and run.metrics["method"] == "lora"
    assert run.metrics["validation"]["loss"] < run.metrics["validation_before"]["loss"]
    generator = load_generator(run.path)
    prompt = generator.prompt("Who are you?")
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert generator.generate([prompt], Settings(max_new_tokens=12))[0].strip()
