"""Frozen linear weights held in bf16 while a bf16 run trains (switch: train.bf16_frozen_weights).

Under bf16 autocast every linear layer multiplies in bf16: a frozen fp32 weight is cast to a new bf16 copy at each
forward, and autograd keeps that copy for the backward pass. A LoRA model is nearly all frozen weights, so a step
held the fp32 weights plus a bf16 copy of each: three times the bytes of the bf16 weights. Storing those weights
in bf16 while training gives the same products (the same round-to-nearest cast, done once instead of at every
forward) without the fp32 values or the copies. The fp32 values wait in a file beside the checkpoints and are put
back exactly for each evaluation and at the end, so evaluation, the saved model and all that follows see the
original weights. transformers maps the weight files into memory, and a tensor still pointing there keeps the whole
file's pages counted as the process's, so the frozen tensors that stay fp32 (embeddings, norms) get memory of their
own first. Autocast has no such option, and loading the base model in bf16 (as many LoRA recipes do) would
round the merged model's weights for good, hence this module.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class Bf16FrozenWeights:
    """A context for the training loop; `restored()` puts the original weights back within it."""

    def __init__(self, model: nn.Module, store: Path, enabled: bool):
        self.model = model
        self.linears = frozen_linears(model) if enabled else {}
        self.store = store
        self.active = False

    def __enter__(self) -> Bf16FrozenWeights:
        if self.linears:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            save_file({name: m.weight.detach().cpu() for name, m in self.linears.items()}, self.store)
            self._to_bf16()
            cast = {id(m.weight) for m in self.linears.values()}
            for tensor in [*self.model.parameters(), *self.model.buffers()]:
                if id(tensor) not in cast and not tensor.requires_grad:
                    tensor.data = tensor.data.clone()
        return self

    def __exit__(self, *exc) -> None:
        if self.linears:
            self._put_back()
            self.store.unlink(missing_ok=True)

    @contextmanager
    def restored(self):
        if not self.active:
            yield
            return
        self._put_back()
        try:
            yield
        finally:
            self._to_bf16()

    def _to_bf16(self) -> None:
        for m in self.linears.values():
            m.weight.data = m.weight.data.to(torch.bfloat16)
        self.active = True

    def _put_back(self) -> None:
        if not self.active:
            return
        saved = load_file(self.store)
        for name, m in self.linears.items():
            m.weight.data = saved[name].to(m.weight.device)
        self.active = False


def frozen_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers whose fp32 weight no step changes and no other module shares (a tied output head shares
    the input embeddings, which stay fp32 so that the residual stream does)."""
    shared = {id(p) for m in model.modules() if not isinstance(m, nn.Linear) for p in m.parameters(recurse=False)}
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and m.weight.dtype == torch.float32 and not m.weight.requires_grad
            and id(m.weight) not in shared}
