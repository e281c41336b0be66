"""Language-model losses that project to the vocabulary only where a token is scored.

The vocabulary projection is the largest single matrix in a small LM (MiniLM: as costly as its whole 6-layer
body; SmolLM2-135M: a fifth of every token's compute), yet masked LM scores ~15% of positions and
assistant-only SFT often fewer than half. transformers' heads have no switch for "these positions only"
(`logits_to_keep` keeps a suffix, not a mask), so a forward pre-hook hands the output-embeddings layer just
the scored hidden states, as BERT's own pre-training code does.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from accelerate.utils import extract_model_from_parallel

from lmtune.methods.prompt import is_prompt_learning


def masked_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the positions whose label is not -100, their count), for masked LM."""
    labels = batch["labels"]
    keep = labels != -100
    return _scored(model, {k: v for k, v in batch.items() if k != "labels"}, keep, labels[keep])


def causal_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed next-token cross-entropy over the labelled tokens, their count), for causal LM.

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
    if is_prompt_learning(model):  # the soft prompt's virtual tokens come first and are never scored
        virtual = extract_model_from_parallel(model).active_peft_config.num_virtual_tokens
        keep = torch.cat([keep.new_zeros(len(keep), virtual), keep], dim=1)
    return _scored(model, {**inputs, "use_cache": False}, keep, targets[targets != -100])


def _scored(model: torch.nn.Module, inputs: dict, keep: torch.Tensor,
            targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    with _only_positions(model, keep):
        logits = model(**inputs).logits
    if logits.dim() == 3:  # heads that bypass the output-embeddings module return every position
        logits = logits[keep]
    return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum"), len(targets)


@contextmanager
def _only_positions(model: torch.nn.Module, keep: torch.Tensor):
    head = extract_model_from_parallel(model).get_output_embeddings()
    if head is None:
        yield
        return
    handle = head.register_forward_pre_hook(lambda module, args: (args[0][keep], *args[1:]))
    try:
        yield
    finally:
        handle.remove()
