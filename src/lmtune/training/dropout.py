"""Dropout with a cheaper random mask on CPU, for the length of a training run.

torch's CPU dropout draws one Bernoulli sample per element, which on a small encoder costs more of a training step
than all LayerNorms, GELUs and softmaxes together. Drawing 64 random bits per four elements and reading them as
16-bit lanes keeps each element with probability 1 - p (p rounded to 1/65536), from the same seeded generator, at a
fraction of the cost (README, Speed).
Nothing in torch or transformers offers this, hence the hand-written mask. CUDA's fused dropout is fast already,
so only CPU tensors take this path.

Attention-probability dropout happens inside the attention function, so the same mask reaches it through a
registered attention implementation: SDPA when nothing is dropped (evaluation, decoders without attention
dropout), else scores, softmax, mask and the value product as transformers' eager attention computes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

ATTENTION = "lmtune_sdpa"
_LANES = 4  # 16-bit lanes per int64 random word


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A boolean keep-mask with keep probability 1 - p (to 1/65536), and the 1 / keep scale that goes with it."""
    count = shape.numel()
    words = torch.empty(-(-count // _LANES), dtype=torch.int64, device=device).random_(-2**63, 2**63 - 1)
    dropped = round(p * 65536)
    mask = words.view(torch.int16)[:count].view(shape) >= dropped - 32768
    return mask, 65536 / (65536 - dropped)


def drop(x: torch.Tensor, p: float) -> torch.Tensor:
    mask, scale = keep_mask(x.shape, p, x.device)
    return _Masked.apply(x, mask, scale)


class _Masked(torch.autograd.Function):
    """x * mask * scale, keeping the boolean mask for the backward pass: autograd would keep the float mask (4
    bytes an element in fp32), and LoRA's dropouts alone were half of a decoder's stored activations."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return (x * mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return (grad * mask).mul_(ctx.scale), None, None


class FastDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        return drop(x, self.p)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              **kwargs) -> tuple[torch.Tensor, None]:
    plain = (query.device.type == "cpu" and not getattr(module, "is_causal", False) and not kwargs.get("is_causal")
             and kwargs.get("position_bias") is None and key.shape[1] == query.shape[1])  # no grouped KV heads
    if not dropout or not plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scores = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.shape[-1] ** -0.5)
    if attention_mask is not None:
        scores = (scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
                  if attention_mask.dtype == torch.bool else scores + attention_mask)
    probs = drop(torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


@contextmanager
def fast_dropout(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Swap the model's Dropout modules (and SDPA attention) for the fast ones while training, and put them back
    after, so the saved model and later inference are what transformers built."""
    swapped = [m for m in model.modules() if type(m) is nn.Dropout and m.p > 0] if enabled else []
    for module in swapped:  # in place, so references that PEFT or accelerate hold stay valid
        module.__class__ = FastDropout
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switch = enabled and before == "sdpa" and hasattr(model, "set_attn_implementation")
    if switch:
        # Registered here, not at import: importing lmtune leaves transformers' registries as they were.
        AttentionInterface.register(ATTENTION, attention)
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)
        model.set_attn_implementation(ATTENTION)
    try:
        yield
    finally:
        for module in swapped:
            module.__class__ = nn.Dropout
        if switch:
            model.set_attn_implementation(before)
