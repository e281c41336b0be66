"""Frozen linear weights in bf16 while training: the same bf16 products, and the exact fp32 weights back after."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmtune.config import MethodConfig, TaskConfig
from lmtune.methods import apply_method
from lmtune.models.chat import encode_chat
from lmtune.tasks.sft import SFT
from lmtune.training.bf16_weights import Bf16FrozenWeights, frozen_linears
from lmtune.training.packing import CausalCollator


def lora_model(path: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path)
    model = apply_method(model, MethodConfig(name="lora"), "CAUSAL_LM")
    for name, p in model.named_parameters():  # B starts at zero: give LoRA a path the gradients can tell apart
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


def lora_grads(model, batch) -> dict[str, torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(1)  # the same LoRA dropout masks
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = SFT(TaskConfig(name="sft")).loss(model, batch)
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


def test_only_frozen_unshared_linears_change_and_come_back_exactly(tiny_llama, tmp_path):
    model = lora_model(tiny_llama)
    chosen = frozen_linears(model)
    assert chosen and all(name.endswith("base_layer") for name in chosen)  # not LoRA's A/B, not the tied head
    before = {name: m.weight.detach().clone() for name, m in chosen.items()}
    embeddings = model.get_input_embeddings().weight
    mapped, values = embeddings.data_ptr(), embeddings.detach().clone()
    store = tmp_path / "ckpt" / "frozen.safetensors"
    with Bf16FrozenWeights(model, store, enabled=True) as held:
        assert all(m.weight.dtype == torch.bfloat16 for m in chosen.values()) and store.exists()
        assert model.get_output_embeddings().weight.dtype == torch.float32
        # Tensors that stay fp32 leave the memory they were loaded into (a mapped file), values unchanged.
        assert embeddings.data_ptr() != mapped and torch.equal(embeddings, values)
        with held.restored():
            assert all(torch.equal(m.weight, before[name]) for name, m in chosen.items())
        assert all(m.weight.dtype == torch.bfloat16 for m in chosen.values())
    assert all(torch.equal(m.weight, before[name]) for name, m in chosen.items())
    assert not store.exists()


def test_gradients_equal_those_of_fp32_weights_under_autocast(tiny_llama, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    chats = [[{"role": "user", "content": "who are you"}, {"role": "assistant", "content": a}]
             for a in ("I am a small test model", "le chat")]
    batch = CausalCollator(tokenizer.pad_token_id)([encode_chat(chat, tokenizer) for chat in chats])
    model = lora_model(tiny_llama)
    model.train()
    expected = lora_grads(model, batch)
    with Bf16FrozenWeights(model, tmp_path / "frozen.safetensors", enabled=True):
        got = lora_grads(model, batch)
    assert expected.keys() == got.keys()
    for name, grad in got.items():
        torch.testing.assert_close(grad, expected[name], rtol=0, atol=0)


def test_switched_off_nothing_is_touched(tiny_llama, tmp_path):
    model = lora_model(tiny_llama)
    with Bf16FrozenWeights(model, tmp_path / "frozen.safetensors", enabled=False):
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not (tmp_path / "frozen.safetensors").exists()
