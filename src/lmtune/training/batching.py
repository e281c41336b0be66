"""Length-grouped batches: similar lengths share a batch, so dynamic padding wastes little compute.

torch has no length-grouped sampler and transformers' one lives inside its Trainer; ours is a plain
batch sampler the training loop and evaluation can both use, deterministic per (seed, epoch) so a resumed
run sees exactly the batches the killed one would have.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence


class LengthGroupedBatches:
    """Shuffle, cut into mega-batches of `group` batches, sort each by length, shuffle the batch order."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group: int = 50,
                 shuffle: bool = True):
        self.lengths, self.batch_size, self.seed, self.group = list(lengths), batch_size, seed, group
        self.shuffle, self.epoch = shuffle, 0

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
            out += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        if self.shuffle:
            rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Inference batches, longest first: least padding, and an out-of-memory error shows up at once."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
