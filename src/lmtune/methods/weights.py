"""How a trained model's weights leave the method: saved to the model folder, or made plain for export."""

from __future__ import annotations

from pathlib import Path

import torch

from lmtune.config import MethodConfig
from lmtune.errors import UserError
from lmtune.methods.prompt import is_prompt_learning


def save_weights(model: torch.nn.Module, folder: Path, cfg: MethodConfig) -> None:
    """LoRA runs keep the adapter in adapter/ and the merged weights beside it, so that
    `transformers.pipeline(model=...)` needs no peft and the small adapter can still be shared. Soft prompts
    (and LoRA with merge_lora=false) save the adapter alone, loaded onto the base model."""
    if is_prompt_learning(model) or (hasattr(model, "merge_and_unload") and not cfg.merge_lora):
        model.save_pretrained(folder)
        return
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(folder / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(folder, safe_serialization=True)


def plain_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Plain transformers weights: LoRA adapters are merged in; soft prompts cannot be (they lengthen the input)."""
    if is_prompt_learning(model):
        raise UserError("ONNX export needs a model with full weights; a prompt-tuned (soft prompt) model is an "
                        "adapter that PEFT prepends at run time: serve it with PyTorch, or retrain with LoRA/full")
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
