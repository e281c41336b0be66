"""The run's model/ folder: loadable by plain transformers (and peft for the adapter), written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from lmtune.config import Config
from lmtune.io import atomic_dir, write_json
from lmtune.methods.prompt import is_prompt_learning
from lmtune.models.integrity import hashes


def save_model(model: torch.nn.Module, tokenizer, task, path: Path, cfg: Config, record: dict | None = None) -> None:
    """LoRA runs keep the adapter in model/adapter/ and the merged weights in model/, so that
    `transformers.pipeline(model=...)` needs no peft and the small adapter can still be shared. Soft prompts
    (and LoRA with method.merge_lora=false) save the adapter alone in model/, loaded onto the base model.
    `record` is what `lmtune reproduce` needs (lmtune.record)."""
    with atomic_dir(path) as tmp:
        if is_prompt_learning(model) or (hasattr(model, "merge_and_unload") and not cfg.method.merge_lora):
            model.save_pretrained(tmp)
        else:
            if hasattr(model, "merge_and_unload"):
                model.save_pretrained(tmp / "adapter")
                model = model.merge_and_unload()
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # The files' hashes, checked whenever the model is loaded (models.integrity).
        write_json(tmp / "lmtune.json", {**task.state(), "base_model": _base_model(cfg.model.name),
                                         "method": cfg.method.name, "files": hashes(tmp), "record": record})


def _base_model(name: str) -> str:
    """A local folder is recorded by absolute path, so an adapter-only model loads from any working folder."""
    return str(Path(name).resolve()) if Path(name).is_dir() else name
