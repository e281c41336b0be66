"""Row-sparse word-embedding updates: AdamW's arithmetic on the rows a batch uses, nothing elsewhere."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from lmtune.config import TrainConfig
from lmtune.training import sparse_embeddings
from lmtune.training.loop import clip_gradients
from lmtune.training.optim import build_optimizer


def build_optimizer_for(model: torch.nn.Module, cfg: TrainConfig, processes: int = 1) -> torch.optim.Optimizer:
    """As training builds it: the embedding made sparse where it can be first."""
    sparse_embeddings.prepare(model, cfg, processes)
    return build_optimizer(model, cfg)


class _Accelerator:
    """What clip_gradients asks of accelerate; `loss_scale` stands for fp16's gradient scaler."""

    def __init__(self, loss_scale: float = 1.0, model: torch.nn.Module | None = None):
        self.loss_scale, self.model = loss_scale, model

    def clip_grad_norm_(self, params, max_norm):
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unscale_gradients(self):
        for p in self.model.parameters() if self.model else []:
            if p.grad is not None:
                p.grad = p.grad / self.loss_scale


def _classifier(tiny_bert: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2, hidden_dropout_prob=0.0,
                                                              attention_probs_dropout_prob=0.0)


def _step(model, optimizer, ids: torch.Tensor, max_norm: float | None) -> None:
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1]))
    out.loss.backward()
    if max_norm:
        clip_gradients(_Accelerator(), model, max_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("max_norm", [None, 1e-3])  # 1e-3 clips: the sparse norm path must scale like torch's
def test_first_step_equals_dense_adamw(tiny_bert, max_norm):
    """On the first step a dense AdamW moves untouched rows only by weight decay, so with no decay the two
    optimisers must leave every parameter equal."""
    cfg = TrainConfig(weight_decay=0.0, lr=1e-2)
    dense, sparse = _classifier(tiny_bert), _classifier(tiny_bert)
    dense_opt = build_optimizer_for(dense, cfg.model_copy(update={"sparse_embeddings": False}))
    sparse_opt = build_optimizer_for(sparse, cfg)
    assert sparse.get_input_embeddings().sparse and not dense.get_input_embeddings().sparse
    ids = torch.tensor([[2, 70, 71, 70, 3], [2, 72, 73, 74, 3]])  # a repeated row: its gradients must sum
    _step(dense, dense_opt, ids, max_norm)
    _step(sparse, sparse_opt, ids, max_norm)
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_rows_keep_coasting_on_momentum_like_dense_adamw(tiny_bert):
    """Fewer steps than the momentum window: a row left out of later batches still moves on its momentum, exactly
    as torch's dense AdamW moves it (no weight decay, which dense AdamW also applies to never-used rows)."""
    cfg = TrainConfig(weight_decay=0.0, lr=1e-2)
    dense, sparse = _classifier(tiny_bert), _classifier(tiny_bert)
    dense_opt = build_optimizer_for(dense, cfg.model_copy(update={"sparse_embeddings": False}))
    sparse_opt = build_optimizer_for(sparse, cfg)
    batches = [torch.tensor([[2, 70, 71, 3], [2, 72, 73, 3]]), torch.tensor([[2, 80, 81, 3], [2, 82, 70, 3]])]
    for step in range(5):
        _step(dense, dense_opt, batches[step % 2], None)  # unclipped: the norms' summation order differs
        _step(sparse, sparse_opt, batches[step % 2], None)
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        if name.endswith("attention.self.key.bias"):
            continue  # softmax cancels a key bias: its gradient is rounding noise, which Adam scales to lr-sized steps
        # 1e-5: the fused kernel's rounding differs from the row arithmetic's by ~1e-7, and Adam divides
        # near-zero gradients by their own size, so five steps at lr 1e-2 grow it to ~2e-6
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_rows_never_used_stay_put(tiny_bert):
    model = _classifier(tiny_bert)
    optimizer = build_optimizer_for(model, TrainConfig(lr=1e-2))  # weight decay 0.01 on
    before = model.get_input_embeddings().weight.detach().clone()
    used = torch.tensor([[2, 70, 71, 3], [2, 72, 73, 3]])
    for _ in range(3):
        _step(model, optimizer, used, 1.0)
    after = model.get_input_embeddings().weight.detach()
    changed = (after != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == sorted(set(used.flatten().tolist()) - {0})
    state = optimizer.state[model.get_input_embeddings().weight]
    assert state["step"].item() == 3 and state["exp_avg"][5].abs().sum() == 0


def test_state_survives_a_checkpoint_round_trip(tiny_bert):
    model = _classifier(tiny_bert)
    optimizer = build_optimizer_for(model, TrainConfig())
    ids = torch.tensor([[2, 70, 71, 3], [2, 72, 73, 3]])
    _step(model, optimizer, ids, 1.0)
    twin_model = copy.deepcopy(model)
    twin = build_optimizer_for(twin_model, TrainConfig())
    twin.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # as from a checkpoint: no shared tensors
    _step(model, optimizer, ids, 1.0)
    _step(twin_model, twin, ids, 1.0)
    for a, b in zip(model.parameters(), twin_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_dense_where_sparse_cannot_apply(tiny_bert):
    tied = AutoModelForMaskedLM.from_pretrained(tiny_bert)  # the MLM head shares the embedding matrix
    build_optimizer_for(tied, TrainConfig())
    assert not tied.get_input_embeddings().sparse
    frozen = _classifier(tiny_bert)
    frozen.get_input_embeddings().requires_grad_(False)
    build_optimizer_for(frozen, TrainConfig())
    assert not frozen.get_input_embeddings().sparse
    several = _classifier(tiny_bert)
    build_optimizer_for(several, TrainConfig(), processes=2)  # DDP would all-reduce it densely
    assert not several.get_input_embeddings().sparse
    sgd = _classifier(tiny_bert)
    build_optimizer_for(sgd, TrainConfig(optimizer="sgd"))
    assert not sgd.get_input_embeddings().sparse


def test_sparse_clipping_unscales_fp16_gradients_first(tiny_bert):
    """Under fp16 the gradients are loss-scaled until accelerate unscales them: the norm must be taken after, so a
    bound the true gradient is under leaves it alone however large the loss scale made it."""
    plain, scaled = _classifier(tiny_bert), _classifier(tiny_bert)
    for model in (plain, scaled):
        build_optimizer_for(model, TrainConfig())
        ids = torch.tensor([[2, 70, 71, 3], [2, 72, 73, 3]])
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1])).loss
        (loss * (1024.0 if model is scaled else 1.0)).backward()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad.coalesce().values() if p.grad.is_sparse
                                                                          else p.grad) for p in plain.parameters()]))
    assert norm < 1.0 < 1024 * norm  # so max_norm 1 clips the scaled gradients but not the true ones
    clip_gradients(_Accelerator(model=plain), plain, 1.0)
    clip_gradients(_Accelerator(1024.0, scaled), scaled, 1.0)
    for a, b in zip(plain.parameters(), scaled.parameters(), strict=True):
        torch.testing.assert_close(a.grad.to_dense(), b.grad.to_dense(), atol=1e-7, rtol=1e-4)
