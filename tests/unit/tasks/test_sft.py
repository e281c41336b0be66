"""sft: chat rendering and assistant-only labels, packing without leakage, length limits, methods, generation."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmtune.config import DataConfig, TaskConfig, build_config
from lmtune.errors import ConfigError, DataError
from lmtune.models.chat import FALLBACK_TEMPLATE, encode_chat, ensure_chat_template
from lmtune.tasks.lm_loss import causal_loss
from lmtune.tasks.sft import SFT, answer_budget
from lmtune.training.packing import CausalCollator, pack

CHAT = [{"role": "user", "content": "hello who are you"}, {"role": "assistant", "content": "I am a small test model"},
        {"role": "user", "content": "translate to French: the cat"}, {"role": "assistant", "content": "le chat"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


def labelled_runs(feature: dict) -> list[list[int]]:
    """The maximal runs of consecutive scored tokens."""
    runs, current = [], []
    for token, label in zip(feature["input_ids"], feature["labels"], strict=True):
        if label == -100:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == token
            current.append(label)
    return runs + ([current] if current else [])


def test_only_assistant_tokens_are_labelled(tokenizer):
    feature = encode_chat(CHAT, tokenizer)
    assert tokenizer.decode(feature["input_ids"]) == tokenizer.apply_chat_template(CHAT, tokenize=False)
    runs = [tokenizer.decode(run) for run in labelled_runs(feature)]
    # Each answer, with its end-of-turn marker (so the model learns to stop), and nothing else.
    assert runs == ["I am a small test model<|im_end|>\n", "le chat<|im_end|>\n"]
    # Token by token: every token outside those spans is -100, including the assistant header.
    header = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    ids = feature["input_ids"]
    starts = [i for i in range(len(ids)) if ids[i:i + len(header)] == header]
    assert len(starts) == 2
    for start in starts:
        assert feature["labels"][start:start + len(header)] == [-100] * len(header)
        assert feature["labels"][start + len(header)] == ids[start + len(header)]
    assert sum(label != -100 for label in feature["labels"]) == sum(len(r) for r in labelled_runs(feature))


def test_loss_on_all_scores_the_whole_chat(tokenizer):
    feature = encode_chat(CHAT, tokenizer, loss_on="all")
    assert feature["labels"] == feature["input_ids"]


def test_fallback_template_for_a_tokenizer_without_one(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.chat_template = None
    assert ensure_chat_template(tok) is False and tok.chat_template == FALLBACK_TEMPLATE
    runs = [tok.decode(run) for run in labelled_runs(encode_chat(CHAT[:2], tok))]
    assert runs == ["I am a small test model<|im_end|>\n\n"]  # EOS ends the answer


def test_a_template_that_rewrites_earlier_turns_is_refused(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    # Shows the turn count up front: earlier turns render differently once more follow.
    tok.chat_template = "{{ messages|length }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ConfigError, match="renders earlier turns differently"):
        encode_chat(CHAT, tok)


def test_pack_keeps_every_example_once_within_the_limit():
    features = [{"input_ids": list(range(1, n + 1)), "labels": list(range(1, n + 1))} for n in (7, 3, 5, 2, 6, 1, 4)]
    rows = pack(features, max_length=8)
    assert all(len(r["input_ids"]) <= 8 for r in rows)
    assert len(rows) == 4  # 28 tokens: best-fit decreasing gives 7+1, 6+2, 5+3, 4
    segments = [len(seg) for r in rows for seg in "".join("|" if p == 0 else "." for p in r["position_ids"])
                .split("|")[1:]]
    assert sorted(n + 1 for n in segments) == [1, 2, 3, 4, 5, 6, 7]  # each example whole, exactly once
    for row in rows:
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
        assert all(row["labels"][i] == -100 for i in starts)  # never scored across an example boundary
        assert sum(1 for label in row["labels"] if label != -100) == len(row["input_ids"]) - len(starts)


def test_packed_examples_do_not_attend_to_each_other(tiny_llama, tokenizer):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    examples = [encode_chat(CHAT[:2], tokenizer), encode_chat(CHAT[2:], tokenizer)]
    packed = CausalCollator(tokenizer.pad_token_id)(pack(examples, max_length=256))
    alone = [model(input_ids=torch.tensor([e["input_ids"]])).logits[0] for e in examples]
    with torch.no_grad():
        together = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
    # pack() puts the longer example first
    first, second = sorted(alone, key=len, reverse=True)
    assert torch.allclose(together[: len(first)], first, atol=1e-5)
    assert torch.allclose(together[len(first):len(first) + len(second)], second, atol=1e-5)
    # The summed loss of the packed row equals the sum over the examples scored alone.
    packed_sum, packed_n = causal_loss(model, packed)
    single = [causal_loss(model, CausalCollator(tokenizer.pad_token_id)([e])) for e in examples]
    assert packed_n == sum(n for _, n in single)
    assert packed_sum.item() == pytest.approx(sum(s.item() for s, _ in single), rel=1e-5)


def test_causal_loss_matches_transformers_own(tiny_llama, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    batch = CausalCollator(tokenizer.pad_token_id)([encode_chat(CHAT, tokenizer), encode_chat(CHAT[:2], tokenizer)])
    total, count = causal_loss(model, batch)
    reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      labels=batch["labels"]).loss
    assert (total / count).item() == pytest.approx(reference.item(), rel=1e-5)
    assert not model.get_output_embeddings()._forward_pre_hooks


def chats_file(tmp_path, n: int = 12, answer: str = "I am a small test model") -> str:
    rows = [{"instruction": f"hello who are you {i}", "input": "", "output": answer} for i in range(n)]
    path = tmp_path / "chats.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("policy", ["truncate", "drop", "error"])
def test_over_long_chats(tmp_path, tokenizer, policy):
    rows = [{"prompt": "hi", "completion": "the cat sat on the mat " * 20}, {"prompt": "hi", "completion": "hello"},
            {"prompt": "hi", "completion": "the cat sat on the mat " * 20}]
    path = tmp_path / "chats.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    data = DataConfig(train=str(path), max_length=48, too_long=policy)
    task = SFT(TaskConfig(name="sft"))
    rows = task.read_eval(data)
    if policy == "error":
        with pytest.raises(DataError, match=r"chats\.json.*row 1.*over data.max_length=48"):
            task.encode(rows, tokenizer, data)
        return
    features, lengths = task.encode_counted(rows, tokenizer, data)
    if policy == "truncate":
        assert [len(f["input_ids"]) for f in features][::2] == [48, 48] and lengths["truncated"] == 2
        assert [f["row"] for f in features] == [1, 2, 3]
    else:
        assert [f["row"] for f in features] == [2] and lengths["dropped"] == 2


def test_no_chat_fitting_is_an_error(tmp_path, tokenizer):
    path = chats_file(tmp_path, n=2)
    data = DataConfig(train=path, max_length=12)  # shorter than the system prompt and question
    with pytest.raises(DataError, match="no chat fits in data.max_length=12"):
        SFT(TaskConfig(name="sft")).encode(SFT(TaskConfig(name="sft")).read_eval(data), tokenizer, data)


def test_decoder_tasks_default_to_smollm2_with_lora():
    cfg = build_config({"task": {"name": "sft"}})
    assert (cfg.model.name, cfg.method.name, cfg.data.max_length, cfg.train.batch_size) == \
        ("smollm2-135m", "lora", 1024, 4)
    cfg = build_config({"task": {"name": "sft"}, "data": {"max_length": 300}, "method": {"name": "full"}})
    assert (cfg.method.name, cfg.data.max_length) == ("full", 300)
    assert build_config({}).model.name == "minilm" and build_config({}).method.name == "full"


def test_held_out_answers_get_the_references_length_and_a_half():
    assert answer_budget([[7] * 4, [7] * 10], 128) == 16
    assert answer_budget([[7] * 200], 128) == 128
    assert answer_budget([], 128) == 128
