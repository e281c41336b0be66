"""Which input tokens a prediction rests on: integrated gradients, occlusion, and a faithfulness check.

Integrated gradients (Captum's LayerIntegratedGradients on the input embeddings) attribute the score of the
predicted output to each token: the path integral of the gradient from a baseline input (every token but the
special ones replaced by padding) to the real one. The attributions add up to score(input) - score(baseline)
(completeness); the gap left by the finite number of steps is returned as `delta`. Models without gradients
(ONNX Runtime) get occlusion instead: each token's attribution is how far the score falls when it alone is
padded out.

`score(model, inputs) -> tensor[batch]` is the task's: the predicted class's probability for classification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Score = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]
STEPS = 32  # points on the path; the completeness gap (`delta`) says whether they were enough
PATH_BATCH = 8  # path points per forward/backward pass: bounds the activations kept for the backward pass


@dataclass
class Attribution:
    tokens: list[str]
    scores: list[float]  # one per token, special tokens 0
    delta: float  # completeness gap: sum(scores) - (score(input) - score(baseline)); 0 for occlusion
    method: str


def integrated_gradients(model: torch.nn.Module, inputs: dict[str, torch.Tensor], score: Score,
                         special: torch.Tensor, pad_id: int, steps: int = STEPS) -> tuple[np.ndarray, float]:
    """(attribution per token, completeness gap) for one encoded row (batch of 1). `special` marks the tokens
    kept in the baseline ([CLS], [SEP]): the rest become padding."""
    # Captum loads matplotlib's pyplot on import: only runs that explain pay for it.
    from captum.attr import LayerIntegratedGradients
    ids = inputs["input_ids"]
    special = special.to(ids.device)
    baseline = torch.where(special, ids, torch.full_like(ids, pad_id))
    others = {k: v for k, v in inputs.items() if k != "input_ids"}

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        batch = {k: v.expand(len(input_ids), -1) for k, v in others.items()}
        return score(model, {"input_ids": input_ids, **batch})

    explainer = LayerIntegratedGradients(forward, model.get_input_embeddings())
    with torch.autocast(ids.device.type, enabled=False):  # gradients along the path in fp32
        values, delta = explainer.attribute(ids, baselines=baseline, n_steps=steps, return_convergence_delta=True,
                                            internal_batch_size=PATH_BATCH)
    per_token = values.sum(-1)[0].masked_fill(special[0], 0.0)
    return per_token.detach().float().cpu().numpy(), float(delta.abs().max())


def occlusion(model: torch.nn.Module, inputs: dict[str, torch.Tensor], score: Score, special: torch.Tensor,
              pad_id: int) -> np.ndarray:
    """Score drop when each token alone is replaced by padding (one forward pass of len(tokens) rows)."""
    ids = inputs["input_ids"][0]
    n = len(ids)
    occluded = ids.repeat(n, 1)
    occluded[torch.arange(n), torch.arange(n)] = pad_id
    others = {k: v.expand(n, -1) for k, v in inputs.items() if k != "input_ids"}
    with torch.inference_mode():
        full = score(model, inputs)[0]
        drops = full - score(model, {"input_ids": occluded, **others})
    return drops.masked_fill(special[0].to(drops.device), 0.0).float().cpu().numpy()


def deletion_drops(model: torch.nn.Module, inputs: dict[str, torch.Tensor], score: Score, attributions: np.ndarray,
                   special: torch.Tensor, k: int, rng: np.random.Generator,
                   draws: int = 5) -> tuple[float, float] | None:
    """(score drop when the k most positively attributed tokens are deleted, mean drop over `draws` deletions of
    k random tokens): a faithful attribution's top tokens matter more than random ones. At least one token stays
    (a model without special tokens cannot read an empty row); None for a row too short to delete from."""
    candidates = np.flatnonzero(~special[0].cpu().numpy())
    k = min(k, len(candidates) - (0 if bool(special.any()) else 1))
    if k < 1:
        return None
    top = candidates[np.argsort(-attributions[candidates], kind="stable")[:k]]
    with torch.inference_mode():
        full = float(score(model, inputs)[0])
        top_drop = full - float(score(model, _without(inputs, top))[0])
        random_drops = [full - float(score(model, _without(inputs, rng.choice(candidates, k, replace=False)))[0])
                        for _ in range(draws)]
    return top_drop, float(np.mean(random_drops))


def _without(inputs: dict[str, torch.Tensor], positions: np.ndarray) -> dict[str, torch.Tensor]:
    keep = torch.ones(inputs["input_ids"].shape[1], dtype=torch.bool, device=inputs["input_ids"].device)
    keep[torch.as_tensor(positions, dtype=torch.long)] = False
    return {k: v[:, keep] for k, v in inputs.items()}
