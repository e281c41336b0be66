"""Methods turn a loaded model into the trainable model: which weights learn, and how.

Each method is one module with `apply(model, cfg, peft_task_type) -> model`; `METHODS` maps config names
to them, so a new method is a new module plus one line here, and the trainer never changes.
"""

from __future__ import annotations

import warnings

import torch

from lmtune.config import MethodConfig
from lmtune.methods import freeze, full, lora, prompt
from lmtune.methods.prompt import model_virtual_tokens, virtual_tokens
from lmtune.methods.weights import plain_weights, save_weights

# peft still reads transformers' renamed `is_gradient_checkpointing` on every wrap; the warning is not the user's.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

__all__ = ["METHODS", "apply_method", "count_parameters", "model_virtual_tokens", "plain_weights", "save_weights",
           "virtual_tokens"]

METHODS = {"full": full.apply, "freeze": freeze.apply, "head": freeze.apply_head, "lora": lora.apply,
           "prompt-tuning": prompt.apply_prompt_tuning, "p-tuning": prompt.apply_p_tuning}


def apply_method(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    return METHODS[cfg.name](model, cfg, peft_task_type)


def count_parameters(model: torch.nn.Module) -> dict[str, int | float]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "trainable_pct": round(100 * trainable / total, 4)}
