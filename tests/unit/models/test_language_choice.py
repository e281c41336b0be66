"""The default model follows the language of the training texts, and runs say how each language scored."""

from __future__ import annotations

import pandas as pd
import pytest

from lmtune.api import train
from lmtune.data.scripts import script_of, script_shares
from lmtune.evaluation.languages import accuracy_by_language
from lmtune.models.choose import DEFAULTS, choose_model, row_texts
from lmtune.models.registry import BUILTIN
from lmtune.recipe import DECODER_CLASSIFIER_LR

ENGLISH = ["a gorgeous, witty film", "never again", "the delivery was late and cold"]
CHINESE = ["很好吃，送得很快", "分量大，价格实惠。", "这家店的iPhone壳质量很差"]


@pytest.mark.parametrize(("text", "script"), [
    ("a gorgeous, witty film", "latin"), ("很好吃，送得很快", "cjk"),
    ("这家店的iPhone壳质量很差", "cjk"),  # a brand name in Latin letters inside a Chinese review
    ("Отличный фильм", "other"), ("12345 !!", None),
])
def test_script_of_a_text(text, script):
    assert script_of(text) == script


def test_script_shares_count_rows_not_characters():
    assert script_shares([*ENGLISH, CHINESE[0]]) == {"latin": 0.75, "cjk": 0.25, "other": 0.0}
    assert script_shares(["123"]) == {"latin": 0.0, "cjk": 0.0, "other": 0.0}


@pytest.mark.parametrize(("texts", "kind", "expected"), [
    (ENGLISH * 10, "encoder", DEFAULTS["en"]["encoder"]),
    (CHINESE * 10, "encoder", DEFAULTS["zh"]["encoder"]),
    (ENGLISH * 5 + CHINESE * 5, "encoder", DEFAULTS["multilingual"]["encoder"]),
    (ENGLISH * 10, "decoder", DEFAULTS["en"]["decoder"]),
    (CHINESE * 10, "decoder", DEFAULTS["zh"]["decoder"]),
])
def test_the_model_follows_the_language(texts, kind, expected):
    choice = choose_model(texts, kind)
    assert choice.name == expected
    assert BUILTIN[choice.name].kind == kind
    assert "%" in choice.reason and choice.name in choice.reason


def test_every_default_is_a_built_in_model_that_reads_its_language():
    for language, by_kind in DEFAULTS.items():
        for kind, name in by_kind.items():
            spec = BUILTIN[name]
            assert spec.kind == kind
            assert language == "multilingual" or language in spec.languages or "multilingual" in spec.languages


def test_a_few_english_rows_do_not_make_a_chinese_file_multilingual():
    assert choose_model(CHINESE * 30 + ENGLISH[:1], "encoder").name == DEFAULTS["zh"]["encoder"]


def test_row_texts_read_inputs_and_chat_contents_but_not_labels():
    rows = pd.DataFrame({"text": CHINESE, "label": ["positive", "positive", "negative"]})
    assert row_texts(rows, ("text", "text_pair")) == CHINESE
    tokens = pd.DataFrame({"tokens": [["张", "三"], ["北", "京"]], "tags": [["B-PER", "I-PER"], ["B-LOC", "I-LOC"]]})
    assert script_shares(row_texts(tokens, ("tokens", "text")))["cjk"] == 1.0
    chat = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "您好"}]
    chats = pd.DataFrame({"messages": [chat]})
    assert row_texts(chats, ("text",)) == ["你好 您好"]
    assert len(row_texts(pd.DataFrame({"text": ["a"] * 50}), ("text",), limit=10)) == 10


def _record(text, label, gold):
    return {"text": text, "label": label, "gold": gold}


def test_accuracy_is_split_by_language_when_the_data_mixes_them():
    records = [_record(t, "pos", "pos") for t in ENGLISH] + [_record(CHINESE[0], "pos", "neg"),
                                                            _record(CHINESE[1], "pos", "pos")]
    assert accuracy_by_language(records) == {
        "Chinese/Japanese": {"rows": 2, "accuracy": 0.5},
        "Latin-script (English)": {"rows": 3, "accuracy": 1.0},
    }
    assert accuracy_by_language([_record(t, "pos", "pos") for t in ENGLISH]) == {}
    # A language under a tenth of the rows is not scored on its own.
    assert accuracy_by_language([_record(ENGLISH[0], "a", "a")] * 19 + [_record(CHINESE[0], "a", "b")]) == {}


def test_a_decoder_trained_as_a_classifier_defaults_to_lora(tiny_llama, tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(12)))
    run = train({"name": "c", "output_dir": str(tmp_path), "model": {"name": tiny_llama},
                 "data": {"train": str(data)}, "task": {"baselines": False},
                 "train": {"max_steps": 1, "batch_size": 8}})
    assert run.config.method.name == run.metrics["method"] == "lora"
    out = capsys.readouterr().out
    assert "method: lora, the default for a decoder" in out and "lr: 0.0003" in out
    assert run.config.train.lr == DECODER_CLASSIFIER_LR
    assert (run.model_dir / "adapter").is_dir()


def test_a_decoder_classifier_keeps_the_lr_it_is_given(tiny_llama, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(12)))
    run = train({"name": "c", "output_dir": str(tmp_path), "model": {"name": tiny_llama},
                 "data": {"train": str(data)}, "task": {"baselines": False, "explanations": 0},
                 "train": {"max_steps": 1, "batch_size": 8, "lr": 5e-5}})
    assert run.config.train.lr == 5e-5
