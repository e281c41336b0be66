"""The language-model loss never holds vocabulary logits for more than a chunk of scored positions."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmtune.models.chat import encode_chat
from lmtune.tasks import lm_loss
from lmtune.tasks.lm_loss import causal_loss
from lmtune.training.packing import CausalCollator

CHATS = [[{"role": "user", "content": "hello who are you"},
          {"role": "assistant", "content": "I am a small test model"}],
         [{"role": "user", "content": "translate to French: the cat"}, {"role": "assistant", "content": "le chat"}]]


@pytest.fixture
def batch(tiny_llama) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    return CausalCollator(tokenizer.pad_token_id)([encode_chat(chat, tokenizer) for chat in CHATS])


def head_rows(model) -> list[int]:
    """Rows of every vocabulary projection the model's head makes from now on."""
    rows: list[int] = []
    model.get_output_embeddings().register_forward_hook(lambda module, args, out: rows.append(out.shape[0]))
    return rows


@pytest.mark.parametrize("grad", [False, True])
def test_logits_come_a_chunk_at_a_time_with_the_same_loss_and_gradients(tiny_llama, batch, monkeypatch, grad):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    reference = model(**batch).loss
    reference.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    monkeypatch.setattr(lm_loss, "CHUNK", 3)
    rows = head_rows(model)
    with torch.set_grad_enabled(grad):
        total, count = causal_loss(model, batch)
    assert (total / count).item() == pytest.approx(reference.item(), rel=1e-5)
    assert count > 6 and max(rows) <= 3 and rows.count(0) == 1  # the model's own head call got no position
    if grad:
        (total / count).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)
