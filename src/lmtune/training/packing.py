"""Sequence packing for causal-LM training: several short examples share one row, none sees another.

Padding a batch of chats to its longest wastes most of the compute when lengths vary (Alpaca answers run
from one line to a page). Packing fills rows up to max_length instead. Each example keeps its own
`position_ids` starting at 0, and transformers turns restarting positions into a block-diagonal causal mask
when no attention mask is passed (`masking_utils.find_packed_sequence_indices`), so attention never crosses
from one example into another, and the first token of each example is never scored against the one before.

Rows are filled best-fit-decreasing, which leaves little room unused for typical length mixes; examples are
never split across rows.
"""

from __future__ import annotations

import bisect

import torch

IGNORE = -100


def pack(features: list[dict], max_length: int) -> list[dict]:
    """Rows of input_ids/labels/position_ids, each holding whole examples and at most max_length tokens."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row number), sorted: the tightest row that fits comes first
    for i in order:
        size = len(features[i]["input_ids"])
        at = bisect.bisect_left(free, (size, -1))
        if at == len(free):
            rows.append([i])
            bisect.insort(free, (max_length - size, len(rows) - 1))
        else:
            room, row = free.pop(at)
            rows[row].append(i)
            bisect.insort(free, (room - size, row))
    return [_join([features[i] for i in members]) for members in rows]


def _join(examples: list[dict]) -> dict:
    ids, labels, positions = [], [], []
    for example in examples:
        ids += example["input_ids"]
        labels += [IGNORE, *example["labels"][1:]]  # never predict an example's start from the one before
        positions += range(len(example["input_ids"]))
    return {"input_ids": ids, "labels": labels, "position_ids": positions, "examples": len(examples)}


class CausalCollator:
    """Right-pads input_ids, labels (-100) and, for packed rows, position_ids.

    The attention mask marks real tokens so throughput counts them; the loss drops it for packed rows
    (see `lmtune.tasks.lm_loss.causal_loss`). Padding after a packed row gets positions 0, 1, ... of its own,
    so it forms one more block that no real token attends to.
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        batch: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        packed = "position_ids" in features[0]
        if packed:
            batch["position_ids"] = []
        for f in features:
            n, pad = len(f["input_ids"]), width - len(f["input_ids"])
            batch["input_ids"].append(f["input_ids"] + [self.pad_id] * pad)
            batch["attention_mask"].append([1] * n + [0] * pad)
            batch["labels"].append(f["labels"] + [IGNORE] * pad)
            if packed:
                batch["position_ids"].append(f["position_ids"] + list(range(pad)))
        return {k: torch.tensor(v) for k, v in batch.items()}
