"""Row-sparse word embeddings (switch: train.sparse_embeddings).

A batch uses a few hundred of an encoder's ~30k vocabulary rows, yet the dense embedding gradient, its norm, its
clipping and AdamW's update touch all of them every step (for minilm that is half the parameters and a sixth of a
CPU step: README, Speed). The embedding emits a sparse gradient and `SparseRowAdamW` below updates only the rows
still in motion: those in the batch and those used within the last few dozen steps, whose momentum has not yet
decayed below 1% of its value (44 steps at beta1 0.9). For them the arithmetic is dense AdamW's, so a run of fewer
steps than that is exactly torch's AdamW (tests/unit/training/test_sparse_embeddings.py). Rows idle for longer
skip the rest of their momentum tail and their weight decay. Updating the batch's rows alone (TensorFlow's
LazyAdam) lost SST-2 accuracy (README, Speed): a rare token's row then moves once instead of coasting on its
momentum. torch's SparseAdam is that lazy update, without weight decay, hence this subclass.
"""

from __future__ import annotations

import math

import torch

from lmtune.config import TrainConfig


def prepare(model: torch.nn.Module, cfg: TrainConfig, processes: int) -> None:
    """Make the input embedding's gradient sparse when the config asks for it and it can apply (before the
    optimiser is built, which then is SparseRowAdamW). Only an untied, trainable nn.Embedding can hand its
    gradient over sparsely: a tied output layer (MLM, causal LMs) adds a dense gradient to the same matrix anyway.
    DDP would all-reduce it densely, so multi-process runs keep dense gradients; SGD has no row update here."""
    if not cfg.sparse_embeddings or cfg.optimizer != "adamw" or processes != 1:
        return
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if (type(embedding) is torch.nn.Embedding and embedding.weight.requires_grad
            and (output is None or output.weight is not embedding.weight)):
        embedding.sparse = True


class SparseRowAdamW(torch.optim.AdamW):
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


def clip_sparse(accelerator, model: torch.nn.Module, max_norm: float) -> None:
    """Clipping over dense and sparse gradients: torch's clip_grad_norm_ (and so accelerate's, which the dense runs
    use) cannot take sparse ones, so the same norm is taken here."""
    params = [p for p in model.parameters() if p.grad is not None]
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
