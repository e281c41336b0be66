"""Batched forward passes for evaluation and prediction: longest first, no gradient, no padding waste."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lmtune.training.batching import sorted_batches
from lmtune.training.device import resolve_precision


def model_outputs(model: torch.nn.Module, features: list[dict], collate: Callable, batch_size: int,
                  precision: str = "auto") -> np.ndarray:
    """Logits for every feature, in input order (float32 numpy)."""
    device = next(model.parameters()).device
    bf16 = resolve_precision(precision) == "bf16"
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(features)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for idx in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
            batch = collate([{k: v for k, v in features[i].items() if k != "labels"} for i in idx])
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
            for i, row in zip(idx, logits, strict=True):
                out[i] = row
    model.train(was_training)
    return np.stack(out) if out else np.zeros((0,))
