"""Partial fine-tuning: embeddings and the bottom N layers frozen (`freeze`), or only the head (`head`).

Freezing the lower layers keeps general features intact on small data and cuts backward-pass cost;
the linear probe (`head`) is the cheapest honest measure of what the pretrained features already know.
"""

from __future__ import annotations

import torch

from lmtune.config import MethodConfig
from lmtune.errors import ConfigError


def layer_stack(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The transformer blocks, found by shape (the ModuleList as long as the layer count) so that any
    architecture works without a per-family table."""
    n = model.config.num_hidden_layers
    for module in model.base_model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ConfigError(f"cannot find the {n} transformer layers of {type(model).__name__} to freeze")


def apply(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    layers = layer_stack(model)
    if cfg.freeze_layers > len(layers):
        raise ConfigError(f"method.freeze_layers={cfg.freeze_layers} but the model has {len(layers)} layers")
    model.requires_grad_(True)
    model.get_input_embeddings().requires_grad_(False)
    embeddings = getattr(model.base_model, "embeddings", None)  # BERT-style: positions, types, LayerNorm
    if embeddings is not None:
        embeddings.requires_grad_(False)
    for layer in layers[: cfg.freeze_layers]:
        layer.requires_grad_(False)
    return model


def apply_head(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    model.requires_grad_(True)
    model.base_model.requires_grad_(False)
    return model
