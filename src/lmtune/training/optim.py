"""Optimiser and learning-rate schedule from the config."""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from lmtune.config import TrainConfig

# Biases and normalisation weights are not decayed: decaying them only hurts (BERT's original recipe).
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith(_NO_DECAY) or p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    return math.ceil(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    name = "constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps(cfg, total_steps),
                         num_training_steps=total_steps)
