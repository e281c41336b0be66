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
