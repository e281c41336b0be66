"""LoRA through PEFT: low-rank updates on the linear layers, the task head trained in full."""

from __future__ import annotations

import torch

from lmtune.config import MethodConfig


def apply(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model  # seconds to import: only runs that use LoRA pay for it

    # "all-linear" (every linear layer but the output head) works for any architecture and beats the
    # attention-only default on quality for a small parameter cost (QLoRA paper, section 4).
    config = LoraConfig(task_type=peft_task_type, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                        lora_dropout=cfg.lora_dropout, target_modules=cfg.lora_target_modules or "all-linear")
    return get_peft_model(model, config)
