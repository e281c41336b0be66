"""Length-grouped batches: similar lengths share a batch, so dynamic padding wastes little compute.

torch has no length-grouped sampler and transformers' one lives inside its Trainer; ours is a plain
batch sampler the training loop and evaluation can both use, deterministic per (seed, epoch) so a resumed
run sees exactly the batches the killed one would have. Micro-batches cut a training batch into pieces of a
bounded number of tokens whose gradients add up to the batch's: activation memory then follows that bound, not
batch_size x max_length (4 x 1024 tokens of SmolLM2 stored 5 GB for the backward pass).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import torch


class LengthGroupedBatches:
    """Shuffle, cut into mega-batches of `group` batches, sort each by length, shuffle the batch order.

    With `max_tokens`, a batch holds as many rows as fit that many padded tokens (rows x its longest row) instead
    of `batch_size` rows: short rows share large batches, long rows small ones, so a batch's work and memory stay
    near the budget whatever the lengths."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group: int = 50,
                 shuffle: bool = True, max_tokens: int | None = None):
        self.lengths, self.batch_size, self.seed, self.group = list(lengths), batch_size, seed, group
        self.shuffle, self.epoch, self.max_tokens = shuffle, 0, max_tokens

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        chunk = self.batch_size * self.group
        out = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=self.lengths.__getitem__, reverse=True)
            out += self._cut(part)
        if self.shuffle:
            rng.shuffle(out)
        return out

    def _cut(self, part: list[int]) -> list[list[int]]:
        if not self.max_tokens:
            return [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        batches, current = [], []
        for index in part:  # longest first: a batch's first row sets its padded length
            if current and (len(current) + 1) * self.lengths[current[0]] > self.max_tokens:
                batches.append(current)
                current = []
            current.append(index)
        return batches + [current] if current else batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        """With a token budget the count varies a little between epochs' shuffles; this epoch's is exact."""
        return len(self.batches()) if self.max_tokens else -(-len(self.lengths) // self.batch_size)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Inference batches, longest first: least padding, and an out-of-memory error shows up at once."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


# Activations a training micro-batch may hold on CPU, and what a token stores per layer and hidden unit for the
# backward pass: 80 bytes measured for SmolLM2-135M with LoRA under bf16 autocast (45 KiB per token per layer).
ACTIVATION_BYTES = 1 << 29
BYTES_PER_UNIT = 80


def micro_batch_tokens(setting: int | str | None, model: torch.nn.Module, device: torch.device) -> int | None:
    """train.micro_batch_tokens resolved: 'auto' = what fits ACTIVATION_BYTES on CPU (a laptop's memory is the
    limit there), whole batches on accelerators (whose users size batches to their device)."""
    if setting != "auto":
        return setting
    config = getattr(model, "config", None)
    width, depth = getattr(config, "hidden_size", None), getattr(config, "num_hidden_layers", None)
    if device.type != "cpu" or not width or not depth:
        return None
    return ACTIVATION_BYTES // (BYTES_PER_UNIT * width * depth)


def micro_batches(batch: dict, tokens: int | None,
                  units: Callable[[dict], int] | None = None) -> list[tuple[dict, float]]:
    """The batch cut into runs of rows of at most `tokens` padded tokens (a longer row goes alone), each with its
    share of what the loss averages over (`units`, default rows), so that the shares' weighted losses add up to
    the whole batch's mean loss and their gradients to its gradient."""
    rows = len(batch["input_ids"])
    step = max(1, tokens // batch["input_ids"].shape[1]) if tokens else rows
    if step >= rows or not all(isinstance(v, torch.Tensor | list) and len(v) == rows for v in batch.values()):
        return [(batch, 1.0)]
    pieces = [{k: v[start:start + step] for k, v in batch.items()} for start in range(0, rows, step)]
    count = units or (lambda piece: len(piece["input_ids"]))
    sizes = [count(piece) for piece in pieces]
    total = max(sum(sizes), 1)
    return [(piece, size / total) for piece, size in zip(pieces, sizes, strict=True)]
