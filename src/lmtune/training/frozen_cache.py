"""Frozen layers computed once: `method: freeze` with `method.cache_frozen` (on by default).

The embeddings and the bottom `freeze_layers` (N) layers of a freeze run never change, so their output for a
training example is the same in every epoch. At the first training step they run once over the training set (eval
mode, the run's precision, length-sorted batches) and each example keeps its hidden states for its real tokens
(bf16 when the run computes in bf16, where layer N reads them through bf16 matmuls anyway; fp32 otherwise). Every
step then starts at layer N: for the duration of the task's own loss call the embeddings module returns the
batch's cached states and the layer list holds layers N and up. Evaluation, prediction and the saved model use the
untouched model, and the training clock includes the one-off computation.

What changes: the frozen layers' dropout is no longer applied in training (their outputs are computed once,
deterministically). With dropout off, loss and gradients equal the uncached ones
(tests/unit/training/test_frozen_cache.py).
Padding positions enter layer N as zeros rather than as the frozen layers' output there; real tokens never attend
to them, so only a loss that reads padding positions' own outputs sees a difference (question answering's span
softmax over a padded window).

Not cached, with one line saying why (the run trains as before): several processes, gradient checkpointing, a
collator that rewrites the tokens (mlm's masking), states over BUDGET_BYTES, or an architecture where starting at
layer N does not reproduce the full model, checked in fp32 on a few examples before training (a final norm after
the layer stack, as in ModernBERT, or a base model without an `embeddings` module, as in decoders).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from lmtune.config import Config
from lmtune.methods.freeze import layer_stack
from lmtune.training.batching import sorted_batches
from lmtune.training.device import eval_mode, resolve_precision

BUDGET_BYTES = 2 * 1024**3  # the cache lives in host memory for the whole run; larger sets train uncached
INDEX = "frozen_cache_index"  # a training feature's row in the cache, carried through the collator
CHECKED_EXAMPLES = 4


def plan(model: torch.nn.Module, task, collate: Callable, features: list[dict], cfg: Config,
         accelerator) -> tuple[FrozenCache | None, dict | None]:
    """(the cache to train with, or None; what metrics["train"]["frozen_cache"] reports, None outside freeze runs).
    Call after apply_method and before training; `collate` is the task's collator."""
    if cfg.method.name != "freeze":
        return None, None
    split = Split(model, cfg.method.freeze_layers)
    reason = _skip_reason(split, collate, features, cfg, accelerator.num_processes)
    if reason:
        wanted = cfg.method.cache_frozen and cfg.method.freeze_layers
        if wanted and accelerator.is_main_process:
            print(f"frozen layers not cached: {reason}")
        return None, {"used": False, "reason": reason}
    cache = FrozenCache(split, task.loss, collate, features,
                        cfg.train.precision, cfg.train.eval_batch_size)
    print(f"frozen embeddings + {cache.split.n} layers: computed once at the first step for {len(features):,} "
          f"examples ({cache.report['megabytes']:,} MB), their dropout off (method.cache_frozen=false keeps it)")
    return cache, cache.report


def _skip_reason(split: Split, collate: Callable, features: list[dict], cfg: Config, processes: int) -> str | None:
    model, n = split.model, split.n
    if not cfg.method.cache_frozen:
        return "method.cache_frozen is false"
    if n == 0:
        return "no frozen layers (method.freeze_layers=0)"
    if processes > 1:
        return f"{processes} processes would each hold a copy; caching is single-process only"
    if cfg.train.gradient_checkpointing:
        return "train.gradient_checkpointing is on"
    if not isinstance(getattr(model.base_model, "embeddings", None), torch.nn.Module):
        return f"{type(model.base_model).__name__} has no `embeddings` module feeding its layers"
    size = _bytes(features, model.config.hidden_size, _storage_dtype(cfg.train.precision))
    if size > BUDGET_BYTES:
        return f"the states would take {size / 1024**3:.1f} GiB, over the {BUDGET_BYTES / 1024**3:.0f} GiB budget"
    checked = [_inputs(f) for f in features[:CHECKED_EXAMPLES]]
    if not all(_tokens_kept(collate([f]), [f]) for f in checked):
        return "the task's collator changes the tokens (e.g. masking), so the frozen layers' output varies per step"
    if not _reproduces(split, collate, checked):
        return (f"starting {type(model).__name__} at layer {n} from cached states does not reproduce its outputs "
                "(e.g. a final norm after the layer stack)")
    return None


class Split:
    """A model cut after its frozen layers: the bottom part run alone, or the top part run from given states."""

    def __init__(self, model: torch.nn.Module, n: int):
        self.model, self.n = model, n
        self.base, self.layers = model.base_model, layer_stack(model)
        self.owner, self.name = _owner(self.base, self.layers)

    def bottom_states(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Each example's hidden states after the frozen layers, real tokens only."""
        with _replaced(self.owner, self.name, self.layers[: self.n]):
            hidden = self.base(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        return hidden[mask].split(mask.sum(1).tolist())

    @contextmanager
    def top(self, states: torch.Tensor) -> Iterator[None]:
        """Within it, the model starts at layer n from `states` (batch, tokens, hidden) whatever its inputs."""
        with _replaced(self.base, "embeddings", _Given(states)), \
                _replaced(self.owner, self.name, self.layers[self.n:]):
            yield


class FrozenCache:
    """What training uses instead of the task's own: `features` (each with its cache index), `collate`, `loss`."""

    def __init__(self, split: Split, loss: Callable, collate: Callable, features: list[dict], precision: str,
                 batch_size: int):
        self.split, self._loss, self._collate, self._source = split, loss, collate, features
        self.precision, self.batch_size, self.storage = precision, batch_size, _storage_dtype(precision)
        self.features = [{**f, INDEX: i} for i, f in enumerate(features)]
        self.states: list[torch.Tensor] | None = None
        self.dtype = torch.float32  # what the frozen part hands to layer N, set when computed
        self.report = {"used": True, "layers": split.n, "examples": len(features),
                       "megabytes": round(_bytes(features, split.model.config.hidden_size, self.storage) / 1e6, 1),
                       "storage": str(self.storage).removeprefix("torch.")}

    def collate(self, features: list[dict]) -> dict:
        plain = [{k: v for k, v in f.items() if k != INDEX} for f in features]
        batch = self._collate(plain)
        if not _tokens_kept(batch, plain):  # plan() checked a few examples only; training must never go on silently
            raise RuntimeError("the collator changed the tokens of a batch, so cached frozen-layer states no "
                               "longer match it; set method.cache_frozen=false")
        batch[INDEX] = [f[INDEX] for f in features]
        return batch

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        if self.states is None:  # here rather than before training, so the training clock counts it
            self._compute()
        mask = batch["attention_mask"].bool()
        states = torch.zeros(*mask.shape, self.states[0].shape[-1], dtype=self.dtype, device=mask.device)
        states[mask] = torch.cat([self.states[i] for i in batch[INDEX]]).to(mask.device, self.dtype)
        with self.split.top(states):
            return self._loss(model, {k: v for k, v in batch.items() if k != INDEX})

    def _compute(self) -> None:
        started, states = time.perf_counter(), [None] * len(self._source)
        with eval_mode(self.split.model, self.precision) as device:
            for idx in sorted_batches([len(f["input_ids"]) for f in self._source], self.batch_size):
                batch = {k: v.to(device) for k, v in self._collate([_inputs(self._source[i]) for i in idx]).items()}
                rows = self.split.bottom_states(batch)
                self.dtype = rows[0].dtype
                for i, row in zip(idx, rows, strict=True):
                    states[i] = row.to("cpu", self.storage)
        self.states = states
        self.report["seconds"] = round(time.perf_counter() - started, 2)


class _Given(torch.nn.Module):
    """Stands in for the embeddings module: whatever it is called with, the batch's cached states come out."""

    def __init__(self, states: torch.Tensor):
        super().__init__()
        self.states = states

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.states


def _reproduces(split: Split, collate: Callable, features: list[dict]) -> bool:
    """The model started at layer n from its own bottom part's states gives the full model's outputs (fp32, no
    dropout; one example per batch, so padding plays no part)."""
    with eval_mode(split.model, "fp32") as device:
        for feature in features:
            batch = {k: v.to(device) for k, v in collate([feature]).items()}
            expected = split.model(**batch)
            with split.top(split.bottom_states(batch)[0][None]):
                got = split.model(**batch)
            if not all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(_tensors(expected), _tensors(got),
                                                                                   strict=True)):
                return False
    return True


def _tensors(output) -> list[torch.Tensor]:
    return [v for v in output.values() if isinstance(v, torch.Tensor)]


def _tokens_kept(batch: dict, features: list[dict]) -> bool:
    real = batch["input_ids"][batch["attention_mask"].bool()]
    return real.tolist() == [t for f in features for t in f["input_ids"]]


def _inputs(feature: dict) -> dict:
    return {k: v for k, v in feature.items() if k != "labels"}


def _storage_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if resolve_precision(precision) == "bf16" else torch.float32


def _bytes(features: list[dict], hidden: int, dtype: torch.dtype) -> int:
    return sum(len(f["input_ids"]) for f in features) * hidden * dtype.itemsize


def _owner(root: torch.nn.Module, module: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    for parent in root.modules():
        for name, child in parent.named_children():
            if child is module:
                return parent, name
    raise ValueError(f"{type(module).__name__} is not inside {type(root).__name__}")


@contextmanager
def _replaced(owner: torch.nn.Module, name: str, module: torch.nn.Module) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, module)
    try:
        yield
    finally:
        setattr(owner, name, original)
