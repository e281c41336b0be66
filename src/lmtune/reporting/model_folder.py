"""The run's model/ folder: loadable by plain transformers (and peft for the adapter), written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from lmtune.config import Config
from lmtune.io import atomic_dir, write_json


def save_model(model: torch.nn.Module, tokenizer, task, path: Path, cfg: Config) -> None:
    """LoRA runs keep the adapter in model/adapter/ and the merged weights in model/, so that
    `transformers.pipeline(model=...)` needs no peft and the small adapter can still be shared."""
    with atomic_dir(path) as tmp:
        if hasattr(model, "merge_and_unload"):
            model.save_pretrained(tmp / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "lmtune.json", {**task.state(), "base_model": cfg.model.name, "method": cfg.method.name})
