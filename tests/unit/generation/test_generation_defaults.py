"""Defaults that let small-data SFT learn and keep greedy answers out of loops."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmtune.config import DECODER_MIN_STEPS, TrainConfig, build_config
from lmtune.generation.generate import Generator, Settings
from lmtune.trained.generator import load_generator
from lmtune.training.loop import planned_steps


def test_a_small_dataset_gets_whole_epochs_up_to_min_steps(capsys):
    assert planned_steps(TrainConfig(epochs=3, min_steps=150), per_epoch=19, announce=True) == 152  # 8 epochs
    assert "epochs: 8 instead of 3" in capsys.readouterr().out
    assert planned_steps(TrainConfig(epochs=3, min_steps=150), per_epoch=100, announce=True) == 300
    assert planned_steps(TrainConfig(epochs=3), per_epoch=19, announce=True) == 57
    assert capsys.readouterr().out == ""


def test_decoder_tasks_default_to_a_minimum_of_steps_and_encoders_do_not():
    assert build_config({"task": {"name": "sft"}}).train.min_steps == DECODER_MIN_STEPS
    assert build_config({"task": {"name": "sft"}, "train": {"min_steps": None}}).train.min_steps is None
    assert build_config({}).train.min_steps is None


class Tokenizer:
    pad_token_id = 0


def test_the_repetition_penalty_counts_the_answer_not_the_prompt():
    processors = Settings(repetition_penalty=2.0).kwargs(Tokenizer(), prompt_length=3)["logits_processor"]
    ids = torch.tensor([[5, 6, 7, 8]])  # prompt 5 6 7, answer so far 8
    scores = processors(ids, torch.full((1, 10), 4.0))
    assert scores[0, 8] == 2.0  # said in the answer: penalised
    assert scores[0, 5] == scores[0, 7] == scores[0, 9] == 4.0  # in the prompt only, or never: untouched
    assert len(Settings(repetition_penalty=1.0).kwargs(Tokenizer(), 3)["logits_processor"]) == 0


def test_generation_on_a_cpu_never_autocasts_and_a_loaded_model_reads_bf16_weights(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert Generator(model, AutoTokenizer.from_pretrained(tiny_llama), precision="bf16").precision == "fp32"
    assert model.dtype == torch.float32  # a model still being trained is not touched
    loaded = load_generator(tiny_llama, precision="bf16")
    assert loaded.model.dtype == torch.bfloat16 and loaded.precision == "fp32"
    assert load_generator(tiny_llama, precision="fp32").model.dtype == torch.float32
    assert loaded.generate(["hello"], Settings(max_new_tokens=3))[0] is not None
