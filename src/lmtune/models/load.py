"""Loading tokenizers and models from a resolved local folder (or hub id), with lmtune's safety rules:
weights only from safetensors, remote code only when the user asked for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

from lmtune.config import ModelConfig
from lmtune.models.integrity import verify
from lmtune.models.resolve import resolve


def load_tokenizer(path: str, cfg: ModelConfig):
    tokenizer = AutoTokenizer.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:  # decoder models ship without one; batching needs it
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def model_config(path: str, cfg: ModelConfig, **overrides: Any) -> PretrainedConfig:
    config = AutoConfig.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code,
                                        **overrides)
    if cfg.dropout is not None:
        # Families name their dropout fields differently (hidden_dropout_prob, attention_dropout, ...).
        for key, value in list(vars(config).items()):
            if "dropout" in key and isinstance(value, float):
                setattr(config, key, cfg.dropout)
    return config


def load_model(auto_class, path: str, cfg: ModelConfig, **config_overrides: Any):
    config = model_config(path, cfg, **config_overrides)
    model = auto_class.from_pretrained(path, config=config, revision=cfg.revision, use_safetensors=True,
                                       trust_remote_code=cfg.trust_remote_code)
    if getattr(model.config, "pad_token_id", None) is None and config.eos_token_id is not None:
        model.config.pad_token_id = config.eos_token_id if isinstance(config.eos_token_id, int) \
            else config.eos_token_id[0]
    return model


def load_trained(model_dir: Path, task) -> torch.nn.Module:
    """A trained lmtune model: full weights in the folder, or an adapter (prompt tuning, unmerged LoRA) loaded
    onto the base model named in lmtune.json."""
    state = json.loads((model_dir / "lmtune.json").read_text(encoding="utf-8"))
    if "files" in state:  # runs saved before lmtune recorded hashes have none to check
        verify(model_dir, state["files"], "the model changed after training: train again, or restore the folder")
    spec = ModelConfig(name=str(model_dir))
    if not (model_dir / "adapter_config.json").exists():
        return task.build_model(str(model_dir), spec)
    from peft import PeftModel

    base = state["base_model"]
    return PeftModel.from_pretrained(task.build_model(resolve(base), ModelConfig(name=base)), model_dir)
