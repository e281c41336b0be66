"""Training batches: length-grouped, deterministic per (seed, epoch), fixed-size or within a token budget."""

from __future__ import annotations

import random

from lmtune.training.batching import LengthGroupedBatches


def _lengths(n: int = 500) -> list[int]:
    rng = random.Random(0)
    return [rng.choice([3, 5, 8, 13, 40, 120]) + rng.randrange(3) for _ in range(n)]


def test_every_row_once_and_reproducible():
    lengths = _lengths()
    sampler = LengthGroupedBatches(lengths, 16, seed=3, group=4)
    first = sampler.batches()
    assert sorted(i for batch in first for i in batch) == list(range(len(lengths)))
    assert len(first) == len(sampler) and all(len(b) <= 16 for b in first)
    assert LengthGroupedBatches(lengths, 16, seed=3, group=4).batches() == first
    sampler.set_epoch(1)
    assert sampler.batches() != first


def test_token_budget_bounds_padded_tokens():
    lengths = _lengths()
    sampler = LengthGroupedBatches(lengths, 16, seed=1, group=50, max_tokens=400)
    batches = sampler.batches()
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    padded = [len(b) * max(lengths[i] for i in b) for b in batches]
    assert max(padded) <= 400
    sizes = {len(b) for b in batches}
    assert max(sizes) > 16 and min(sizes) < 16  # short rows share big batches, long rows small ones
    assert len(sampler) == len(batches)


def test_a_row_over_the_budget_gets_its_own_batch():
    sampler = LengthGroupedBatches([500, 4, 4, 4], 2, seed=0, max_tokens=100)
    assert sorted(map(sorted, sampler.batches())) == [[0], [1, 2, 3]]
