"""Full fine-tuning: every weight learns."""

from __future__ import annotations

import torch

from lmtune.config import MethodConfig


def apply(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    model.requires_grad_(True)
    return model
