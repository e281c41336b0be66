"""Language-model losses that project to the vocabulary only where a token is scored.

The vocabulary projection is the largest single matrix in a small LM (MiniLM: as costly as its whole 6-layer
body; SmolLM2-135M: a fifth of every token's compute), yet masked LM scores ~15% of positions and
assistant-only SFT often fewer than half. transformers' heads have no switch for "these positions only"
(`logits_to_keep` keeps a suffix, not a mask), so a forward pre-hook hands the output-embeddings layer just
the scored hidden states, as BERT's own pre-training code does. Even those are many: 16 Alpaca answers score
~6k tokens, whose logits, softmax and gradient at 14 bytes x 49k vocabulary are 4 GB. So the model's own head call
gets no position, and the loss projects the scored hidden states CHUNK positions at a time.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from accelerate.utils import extract_model_from_parallel
from torch.utils.checkpoint import checkpoint

CHUNK = 256  # scored positions projected to the vocabulary at a time: 256 x 49k fp32 logits are 50 MB
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def masked_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the positions whose label is not -100, their count), for masked LM."""
    labels = batch["labels"]
    keep = labels != -100
    return _scored(model, {k: v for k, v in batch.items() if k != "labels"}, keep, labels[keep])


def causal_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                virtual_tokens: int = 0) -> tuple[torch.Tensor, int]:
    """(summed next-token cross-entropy over the labelled tokens, their count), for causal LM. A soft prompt's
    `virtual_tokens` positions come first in the model's output and are never scored.

    Position t predicts label t+1. A packed batch carries `position_ids` that restart at each example; its
    attention mask only marks padding, and is dropped so that transformers builds a block-diagonal causal mask
    from the positions (no example attends to another).
    """
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "position_ids" in inputs:
        inputs.pop("attention_mask", None)
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != -100
    if virtual_tokens:
        keep = torch.cat([keep.new_zeros(len(keep), virtual_tokens), keep], dim=1)
    return _scored(model, {**inputs, "use_cache": False}, keep, targets[targets != -100])


def _scored(model: torch.nn.Module, inputs: dict, keep: torch.Tensor,
            targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    inner = extract_model_from_parallel(model)
    head = None if _rescales_logits(inner.config) else inner.get_output_embeddings()
    hidden: list[torch.Tensor] = []
    autocast: dict = {}
    with _only_positions(head, keep, hidden, autocast):
        logits = model(**inputs).logits
    if not hidden:  # heads that bypass the output-embeddings module return every position
        scored = logits[keep] if logits.dim() == 3 else logits
        return torch.nn.functional.cross_entropy(scored.float(), targets, reduction="sum"), len(targets)
    pieces = zip(hidden[0].split(CHUNK), targets.split(CHUNK), strict=True)
    with torch.autocast(hidden[0].device.type, **autocast):
        if not torch.is_grad_enabled():
            return sum(_projected_loss(head, h, t) for h, t in pieces), len(targets)
        # Recomputed in the backward pass, so only one chunk's logits and softmax are alive at a time: storing them
        # all (14 bytes x 49k vocabulary per scored token for SmolLM2) outweighed the model's own activations.
        return sum(checkpoint(_projected_loss, head, h, t, use_reentrant=False) for h, t in pieces), len(targets)


def _projected_loss(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")


@contextmanager
def _only_positions(head: torch.nn.Module | None, keep: torch.Tensor, hidden: list[torch.Tensor], autocast: dict):
    """The model's own head call gets no position; the scored hidden states land in `hidden` and the autocast
    state the head ran under in `autocast`, for the caller to project them a chunk at a time."""
    if head is None:
        yield
        return

    def take(module, args):
        hidden.append(args[0][keep])
        device = args[0].device.type  # the head's precision (accelerate's autocast wraps the model's forward only)
        autocast.update(enabled=torch.is_autocast_enabled(device), dtype=torch.get_autocast_dtype(device))
        return (hidden[-1][:0], *args[1:])

    handle = head.register_forward_pre_hook(take)
    try:
        yield
    finally:
        handle.remove()


def _rescales_logits(config) -> bool:
    """Families that transform the head's output (Gemma's soft-capping, Cohere's and Granite's scales) are scored
    from the logits the model returns, whole, so that the transform is in the loss."""
    return any(getattr(config, key, None) not in (None, 1, 1.0) for key in LOGIT_TRANSFORMS)
