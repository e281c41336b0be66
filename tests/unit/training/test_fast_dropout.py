"""The cheaper CPU dropout: the same keep rate and scale as torch's, exact attention, nothing left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from lmtune.training.dropout import ATTENTION, FastDropout, attention, fast_dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_rate_scale_and_seed(p):
    torch.manual_seed(0)
    mask, scale = keep_mask(torch.Size([1000, 999]), p, torch.device("cpu"))  # odd size: the last word is cut
    assert mask.shape == (1000, 999) and mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - (1 - p)) < 2e-3
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)
    torch.manual_seed(0)
    assert torch.equal(keep_mask(torch.Size([1000, 999]), p, torch.device("cpu"))[0], mask)


def test_module_drops_in_training_only():
    layer = FastDropout(0.25)
    x = torch.ones(200, 300)
    out = layer(x)
    kept = out != 0
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.75))
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    layer.eval()
    assert torch.equal(layer(x), x)


def test_attention_matches_sdpa_with_padding():
    """With a rate that rounds to nothing dropped, the math path must equal SDPA, padding mask included."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mask[1, ..., 3:] = False  # the second row's last two keys are padding
    module = nn.Module()
    ours, _ = attention(module, q, k, v, mask, dropout=1e-9, scaling=0.3)
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    torch.testing.assert_close(ours, reference.transpose(1, 2))


def test_context_restores_the_model(tiny_bert):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.train()
    ids = torch.tensor([[2, 70, 71, 3, 0]])
    with fast_dropout(model):
        assert model.config._attn_implementation == ATTENTION
        assert any(type(m) is FastDropout for m in model.modules())
        out = model(input_ids=ids, attention_mask=(ids != 0).long(), labels=torch.tensor([1]))
        out.loss.backward()  # the gradient flows through the masks
    assert model.config._attn_implementation == "sdpa"
    assert not any(type(m) is FastDropout for m in model.modules())
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad is not None
    with fast_dropout(model, enabled=False):
        assert model.config._attn_implementation == "sdpa"


def test_backward_keeps_only_the_boolean_mask():
    """The float mask would cost 4 bytes an element of stored activations (LoRA's dropouts: half a decoder's)."""
    x = torch.randn(64, 48, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = FastDropout(0.3)(x)
    assert [t.dtype for t in saved] == [torch.bool]
    out.sum().backward()
    kept = out != 0
    torch.testing.assert_close(x.grad, kept.float() / 0.7, rtol=1e-4, atol=0)


def test_importing_lmtune_registers_no_attention_with_transformers():
    code = ("import lmtune.api, lmtune.cli\nfrom transformers import AttentionInterface\n"
            f"print({ATTENTION!r} in AttentionInterface._global_mapping)")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "False"
