"""A generator for `lmtune generate` and `chat`: a trained decoder run, or any causal LM by name or folder."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from lmtune.config import ModelConfig
from lmtune.errors import UserError
from lmtune.generation.generate import Generator
from lmtune.models.load import load_model, load_tokenizer
from lmtune.models.resolve import resolve
from lmtune.tasks import TASKS
from lmtune.trained.folder import find_model_dir
from lmtune.trained.predictor import Predictor
from lmtune.training.device import resolve_precision


def load_generator(model_or_run: str | Path, precision: str = "auto") -> Generator:
    """A trained lmtune run or model folder (with sft's saved system prompt), else a model name or folder."""
    if find_model_dir(model_or_run) is not None:
        trained = Predictor(model_or_run, precision)
        if trained.task.model_kind != "decoder":
            decoders = [name for name, task in TASKS.items() if task.model_kind == "decoder"]
            raise UserError(f"{model_or_run} is a {trained.task.name} model (an encoder): generate and chat need a "
                            f"causal LM: a run trained with --task {' or --task '.join(decoders)}, or a "
                            "decoder model such as smollm2-135m; use `lmtune predict` for this run")
        model, tokenizer, system = trained.model, trained.tokenizer, trained.task.system
    else:
        spec = ModelConfig(name=str(model_or_run))
        local = resolve(spec.name)
        model, tokenizer, system = load_model(AutoModelForCausalLM, local, spec), load_tokenizer(local, spec), None
    if next(model.parameters()).device.type == "cpu" and resolve_precision(precision) == "bf16":
        # Loaded to generate only: bf16 weights halve what each decoding step reads (benchmarks/precision.py).
        model.to(torch.bfloat16)
    return Generator(model, tokenizer, precision, system)
