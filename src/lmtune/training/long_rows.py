"""Rows longer than the micro-batch budget recompute some layers' activations, so that the budget holds for them too.

`train.micro_batch_tokens` bounds the padded tokens a micro-batch stores activations for, but a row longer than the
budget can only go alone, and what it stores grows with its length. For such a row every k-th transformer layer
recomputes its activations in the backward pass instead of keeping them, k chosen so that the layers that keep
theirs fit the budget; micro-batches within the budget recompute nothing. transformers' own switch
(train.gradient_checkpointing) recomputes every layer for every batch, a third more compute on every step (README,
"Memory"), hence this per-micro-batch choice of the layers' own flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from transformers.modeling_layers import GradientCheckpointingLayer


class LongRows:
    def __init__(self, model: torch.nn.Module, budget: int | None, longest: int):
        """`model` unwrapped (a PEFT model or a transformers model); `longest`: the training set's longest row."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.layers = [m for m in base.modules() if isinstance(m, GradientCheckpointingLayer)]
        self.budget = budget
        supported = getattr(base, "supports_gradient_checkpointing", False)
        usable = (budget and longest > budget and self.layers and supported
                  and not any(layer.gradient_checkpointing for layer in self.layers))  # the user's switch rules
        if not usable:
            self.layers = []
            return
        # Sets each layer's checkpoint function (non-reentrant: frozen embeddings need no grad); the flags then
        # start off and are switched per micro-batch.
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        self._flag(lambda i: False)

    def fitted(self, tokens: int):
        """A context in which a micro-batch of `tokens` padded tokens stores at most the budget's activations."""
        if not self.layers or tokens <= self.budget:
            return nullcontext()
        return self._recomputing(every_nth(self.budget / tokens))

    @contextmanager
    def _recomputing(self, every: int) -> Iterator[None]:
        self._flag(lambda i: i % every == 0)
        try:
            yield
        finally:
            self._flag(lambda i: False)

    def _flag(self, on) -> None:
        for i, layer in enumerate(self.layers):
            layer.gradient_checkpointing = on(i)


def every_nth(kept: float) -> int:
    """k such that recomputing every k-th layer leaves at most the share `kept` (< 1) of layers storing theirs."""
    return max(1, int(1 / (1 - kept)))
