"""Optimiser, gradient clipping and learning-rate schedule from the config.

Row-sparse word embeddings: a batch uses a few hundred of an encoder's ~30k vocabulary rows, yet the dense
embedding gradient, its norm, its clipping and AdamW's update touch all of them every step (for minilm that
is half the parameters and, on the 2-core dev machine, a sixth of the step: benchmarks/train_speed.py).
With `train.sparse_embeddings` the embedding emits a sparse gradient and `AdamW` below updates only the rows
still in motion: those in the batch and those used within the last few dozen steps, whose momentum has not yet
decayed below 1% of its value (44 steps at beta1 0.9). For them the arithmetic is dense AdamW's, so a run of fewer
steps than that is exactly torch's AdamW (tests/unit/test_sparse_embeddings.py). Rows idle for longer skip the
rest of their momentum tail and their weight decay. Updating the batch's rows alone (TensorFlow's LazyAdam) cost
0.3-0.7 points of SST-2 accuracy in 6 of 6 paired runs: a rare token's row then moves once instead of coasting
on its momentum. torch's SparseAdam is that lazy update, without weight decay, hence this subclass.
"""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from lmtune.config import TrainConfig

# Biases and normalisation weights are not decayed: decaying them only hurts (BERT's original recipe).
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, processes: int = 1) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith(_NO_DECAY) or p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernels update every tensor in one pass; on CPU torch otherwise loops over the tensors in Python,
    # which costs a large share of a small model's step (benchmarks/train_speed.py).
    fused = {"fused": True} if _fusable(decay + no_decay) else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, **fused)
    if cfg.sparse_embeddings and processes == 1:
        _sparse_embedding_gradients(model)
    return AdamW(groups, lr=cfg.lr, **fused)


def _sparse_embedding_gradients(model: torch.nn.Module) -> None:
    """Only an untied, trainable nn.Embedding can hand its gradient over sparsely: a tied output layer (MLM,
    causal LMs) adds a dense gradient to the same matrix anyway. DDP would all-reduce it densely, so
    multi-process runs keep dense gradients (the caller passes the process count)."""
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if (type(embedding) is torch.nn.Embedding and embedding.weight.requires_grad
            and (output is None or output.weight is not embedding.weight)):
        embedding.sparse = True


class AdamW(torch.optim.AdamW):
    """torch's AdamW, plus row updates for parameters whose gradient is sparse (see the module doc)."""

    MOMENTUM_LEFT = 0.01  # rows idle until beta1**steps falls below this stop being updated

    @torch.no_grad()
    def step(self, closure=None):
        sparse = [(p, group) for group in self.param_groups for p in group["params"]
                  if p.grad is not None and p.grad.is_sparse]
        grads = [p.grad for p, _ in sparse]
        for p, _ in sparse:
            p.grad = None  # the dense (fused) update skips parameters without a gradient
        loss = super().step(closure)
        for (p, group), grad in zip(sparse, grads, strict=True):
            p.grad = grad
            self._row_step(p, grad.coalesce(), group)
        return loss

    def _row_step(self, p: torch.Tensor, grad: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:  # last_seen is float so that load_state_dict's cast to the parameter's dtype changes nothing
            state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p),
                         last_seen=torch.full(p.shape[:1], -1e9, device=p.device))
        state["step"] += 1
        t = state["step"].item()
        (beta1, beta2), lr = group["betas"], group["lr"]
        touched = grad.indices()[0]
        state["last_seen"][touched] = t
        window = math.ceil(math.log(self.MOMENTUM_LEFT) / math.log(beta1)) if 0 < beta1 < 1 else 0
        rows = (state["last_seen"] >= t - window).nonzero().squeeze(1)  # ascending, the touched rows among them
        g = torch.zeros(len(rows), *p.shape[1:], dtype=grad.dtype, device=p.device)
        g.index_copy_(0, torch.searchsorted(rows, touched), grad.values())
        m = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(g, alpha=1 - beta1)
        v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, m)
        state["exp_avg_sq"].index_copy_(0, rows, v)
        weights = p.index_select(0, rows).mul_(1 - lr * group["weight_decay"])
        denominator = (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
        p.index_copy_(0, rows, weights.addcdiv_(m, denominator, value=-lr / (1 - beta1 ** t)))


def clip_gradients(accelerator, model: torch.nn.Module, max_norm: float) -> None:
    """Accelerate's clipping (it unscales fp16 and knows DeepSpeed/FSDP), unless a gradient is sparse: torch's
    clip_grad_norm_ cannot take those, so the same norm is taken here over dense and sparse gradients."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not any(p.grad.is_sparse for p in params):
        accelerator.clip_grad_norm_(model.parameters(), max_norm)
        return
    accelerator.unscale_gradients()  # as accelerate's clipping does first: fp16 gradients are loss-scaled until then
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # repeated rows summed, so the values' norm is the gradient's
    total = torch.linalg.vector_norm(torch.stack(
        [torch.linalg.vector_norm(p.grad.values() if p.grad.is_sparse else p.grad) for p in params]))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad * scale  # in-place mul_ leaves a sparse tensor marked uncoalesced
        else:
            p.grad.mul_(scale)


def _fusable(params: list[torch.nn.Parameter]) -> bool:
    """torch's fused optimisers take floating-point parameters on CPU or CUDA, all on one device type."""
    devices = {p.device.type for p in params}
    return len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    return math.ceil(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    name = "constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps(cfg, total_steps),
                         num_training_steps=total_steps)
