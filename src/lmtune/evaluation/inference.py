"""Batched forward passes for evaluation and prediction: longest first, no gradient, no padding waste."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lmtune.training.batching import sorted_batches
from lmtune.training.device import eval_mode
from lmtune.training.progress import WorkProgress


def _logits(output) -> torch.Tensor:
    return output.logits


def model_outputs(model: torch.nn.Module, features: list[dict], collate: Callable, batch_size: int,
                  precision: str = "auto", extract: Callable = _logits, per_token: bool = False) -> list[np.ndarray]:
    """One float32 array per feature, in input order.

    `extract` picks the tensor from the model output (default `.logits`; QA stacks start/end logits).
    With `per_token`, each row is cut back to its own length so padding never leaks into results.
    """
    out: list[np.ndarray | None] = [None] * len(features)
    batches = sorted_batches([len(f["input_ids"]) for f in features], batch_size)
    with eval_mode(model, precision) as device, WorkProgress("inference", len(batches)) as progress:
        for idx in batches:
            batch = collate([{k: v for k, v in features[i].items() if k != "labels"} for i in idx])
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            values = extract(model(**inputs)).float().cpu().numpy()
            for i, row in zip(idx, values, strict=True):
                out[i] = row[: len(features[i]["input_ids"])] if per_token else row
            progress.advance()
    return out


def summed_loss(model: torch.nn.Module, features: list[dict], collate: Callable, batch_size: int,
                loss: Callable, precision: str = "auto") -> tuple[float, int]:
    """(summed loss, scored tokens) over all features, for token-level objectives scored as a mean per token
    (language-model loss and perplexity); `loss(model, batch)` returns the batch's (sum, count)."""
    total, count = 0.0, 0
    batches = sorted_batches([len(f["input_ids"]) for f in features], batch_size)
    with eval_mode(model, precision) as device, WorkProgress("evaluate", len(batches)) as progress:
        for idx in batches:
            batch = {k: v.to(device) for k, v in collate([features[i] for i in idx]).items()}
            batch_sum, n = loss(model, batch)
            total, count = total + float(batch_sum), count + n
            progress.advance()
    return total, count
