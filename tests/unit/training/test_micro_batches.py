"""Micro-batches: a batch run in pieces of bounded tokens gives the whole batch's loss and gradients."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmtune.config import TaskConfig
from lmtune.models.chat import encode_chat
from lmtune.tasks.sft import SFT
from lmtune.training.batching import micro_batch_tokens, micro_batches
from lmtune.training.long_rows import LongRows, every_nth
from lmtune.training.loop import Objective, backward
from lmtune.training.packing import CausalCollator

ANSWERS = ["I am a small test model", "le chat", "the cat sat on the mat, hello", "positive"]


def test_pieces_give_the_batch_loss_and_gradients(tiny_llama):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    chats = [[{"role": "user", "content": "hello who are you"}, {"role": "assistant", "content": a}] for a in ANSWERS]
    batch = CausalCollator(tokenizer.pad_token_id)([encode_chat(chat, tokenizer) for chat in chats])
    task = SFT(TaskConfig(name="sft"))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    whole = task.loss(model, batch)
    whole.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    width = batch["input_ids"].shape[1]
    widths: list[int] = []
    model.register_forward_pre_hook(lambda module, args, kwargs: widths.append(kwargs["input_ids"].numel()),
                                    with_kwargs=True)
    pieces = micro_batches(batch, 2 * width, task.loss_units)
    assert [len(piece["input_ids"]) for piece, _ in pieces] == [2, 2]
    loss = backward(Accelerator(cpu=True), model, Objective(loss=task.loss), pieces)
    assert loss == pytest.approx(whole.item(), rel=1e-5)
    assert max(widths) <= 2 * width
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_rows_are_the_default_units_and_a_long_row_goes_alone():
    batch = {"input_ids": torch.ones(3, 10, dtype=torch.long), "labels": torch.tensor([0, 1, 0]), "index": [4, 5, 6]}
    pieces = micro_batches(batch, 5)
    assert [piece["index"] for piece, _ in pieces] == [[4], [5], [6]]
    assert [share for _, share in pieces] == pytest.approx([1 / 3] * 3)
    assert micro_batches(batch, None) == [(batch, 1.0)]


def test_auto_budget_follows_the_model_on_cpu_only(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokens = micro_batch_tokens("auto", model, torch.device("cpu"))
    assert tokens > 1000 and micro_batch_tokens("auto", torch.nn.Module(), torch.device("cpu")) is None
    assert micro_batch_tokens("auto", model, torch.device("cuda")) is None
    assert micro_batch_tokens(64, model, torch.device("cuda")) == 64


def layer_calls(model) -> list[int]:
    """Per decoder layer, how often its first norm runs: twice when the layer's activations are recomputed in the
    backward pass (the checkpoint wraps the layer's forward, so hooks on the layer itself run once)."""
    calls = [0] * len(model.model.layers)
    for i, layer in enumerate(model.model.layers):
        layer.input_layernorm.register_forward_pre_hook(lambda module, args, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


@pytest.mark.parametrize(("budget_share", "recomputed"), [(1.0, []), (0.6, [0, 2]), (0.1, [0, 1, 2, 3])])
def test_a_row_over_the_budget_recomputes_layers_for_the_same_gradients(tiny_llama, budget_share, recomputed):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    chat = [{"role": "user", "content": "hello who are you"}, {"role": "assistant", "content": ANSWERS[2]}]
    batch = CausalCollator(tokenizer.pad_token_id)([encode_chat(chat, tokenizer)])
    task = SFT(TaskConfig(name="sft"))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, num_hidden_layers=4)
    model.train()
    task.loss(model, batch).backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    tokens = batch["input_ids"].numel()
    long_rows = LongRows(model, int(tokens * budget_share), longest=tokens)
    calls = layer_calls(model)
    backward(Accelerator(cpu=True), model, Objective(loss=task.loss), micro_batches(batch, None), long_rows)
    assert [i for i, n in enumerate(calls) if n == 2] == recomputed and set(calls) <= {1, 2}
    assert not any(layer.gradient_checkpointing for layer in model.model.layers)  # off again after the row
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_recomputed_layers_leave_at_most_the_budget_storing():
    for kept in (0.01, 0.3, 0.5, 0.6, 0.75, 0.9, 0.99):
        k = every_nth(kept)
        for layers in range(1, 40):
            assert layers - len(range(0, layers, k)) <= kept * layers + 1e-9
