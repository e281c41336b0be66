"""Optimiser and learning-rate schedule from the config (row-sparse embedding updates: sparse_embeddings.py)."""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from lmtune.config import TrainConfig
from lmtune.training.sparse_embeddings import SparseRowAdamW

# Biases and normalisation weights are not decayed: decaying them only hurts (BERT's original recipe).
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters; SparseRowAdamW when the model hands an embedding gradient over
    sparsely (sparse_embeddings.prepare, called before this)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith(_NO_DECAY) or p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernels update every tensor in one pass; on CPU torch otherwise loops over the tensors in Python,
    # which costs a large share of a small model's step (benchmarks/train_speed.py).
    fused = {"fused": True} if _fusable(decay + no_decay) else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, **fused)
    if any(getattr(m, "sparse", False) for m in model.modules() if isinstance(m, torch.nn.Embedding)):
        return SparseRowAdamW(groups, lr=cfg.lr, **fused)
    return torch.optim.AdamW(groups, lr=cfg.lr, **fused)


def _fusable(params: list[torch.nn.Parameter]) -> bool:
    """torch's fused optimisers take floating-point parameters on CPU or CUDA, all on one device type."""
    devices = {p.device.type for p in params}
    return len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    return math.ceil(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    name = "constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps(cfg, total_steps),
                         num_training_steps=total_steps)
