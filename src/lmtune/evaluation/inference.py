"""Batched forward passes for evaluation and prediction: longest first, no gradient, no padding waste."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lmtune.training.batching import sorted_batches
from lmtune.training.device import resolve_precision


def _logits(output) -> torch.Tensor:
    return output.logits


def model_outputs(model: torch.nn.Module, features: list[dict], collate: Callable, batch_size: int,
                  precision: str = "auto", extract: Callable = _logits, per_token: bool = False) -> list[np.ndarray]:
    """One float32 array per feature, in input order.

    `extract` picks the tensor from the model output (default `.logits`; QA stacks start/end logits).
    With `per_token`, each row is cut back to its own length so padding never leaks into results.
    """
    device = next(model.parameters()).device
    bf16 = resolve_precision(precision) == "bf16"
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(features)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for idx in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
            batch = collate([{k: v for k, v in features[i].items() if k != "labels"} for i in idx])
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            values = extract(model(**inputs)).float().cpu().numpy()
            for i, row in zip(idx, values, strict=True):
                out[i] = row[: len(features[i]["input_ids"])] if per_token else row
    model.train(was_training)
    return out
