"""The tokenisation cache: hits skip encode() and give back exactly what it gave, anything that changes the
features misses, damaged files are encoded again, and runs report where their features came from."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from transformers import AutoTokenizer, BertTokenizerLegacy

from lmtune.api import train
from lmtune.config import DataConfig, TaskConfig
from lmtune.data import token_cache
from lmtune.data.token_cache import cache_dir, cache_key, cached_encode, prune
from lmtune.models.chat import FALLBACK_TEMPLATE
from lmtune.tasks.base import Task
from lmtune.tasks.classification import Classification
from lmtune.tasks.clm import CausalLM
from lmtune.tasks.mlm import MaskedLM
from lmtune.tasks.question_answering import QuestionAnswering
from lmtune.tasks.regression import Regression
from lmtune.tasks.sft import SFT
from lmtune.tasks.token_classification import TokenClassification

CHAT = [{"role": "user", "content": "hello who are you"}, {"role": "assistant", "content": "I am a small test model"},
        {"role": "user", "content": "translate to French: the cat"}, {"role": "assistant", "content": "le chat"}]
DATA = DataConfig(max_length=32)


@pytest.fixture
def bert(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture
def llama(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


def frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame(columns, index=range(1, n + 1))


def reviews() -> pd.DataFrame:
    return frame(text=["good food", "bad service", "the film was great"], label=["good", "bad", "good"])


def classifier() -> Classification:
    return Classification(TaskConfig(), labels=["bad", "good"])


def counting(monkeypatch, task) -> list:
    """Replaces task.encode by itself plus a record of each call."""
    calls, encode = [], task.encode

    def counted(*args):
        calls.append(args)
        return encode(*args)
    monkeypatch.setattr(task, "encode", counted)
    return calls


def test_second_call_loads_without_encoding(tmp_path, bert, monkeypatch):
    task = classifier()
    calls = counting(monkeypatch, task)
    first, hit, _ = cached_encode(task, reviews(), bert, DATA, tmp_path)
    assert not hit and len(calls) == 1 and len(list(tmp_path.glob("*.arrow"))) == 1
    again, hit, _ = cached_encode(task, reviews(), bert, DATA, tmp_path)
    assert hit and len(calls) == 1
    assert repr(again) == repr(first)


# Each case changes one thing that decides the features, on a fresh task, tokenizer and rows.
CHANGES = {
    "a row's text": lambda task, rows, tok, data: (task, rows.assign(text=["good food", "bad", "x"]), tok, data),
    "the index": lambda task, rows, tok, data: (task, rows.set_axis([1, 2, 4]), tok, data),
    "max_length": lambda task, rows, tok, data: (task, rows, tok, DataConfig(max_length=16)),
    "the labels": lambda task, rows, tok, data: (Classification(TaskConfig(), labels=["good", "bad"]), rows, tok,
                                                 data),
    "the padding side": lambda task, rows, tok, data: (task, rows, _set(tok, padding_side="left"), data),
    "the vocabulary": lambda task, rows, tok, data: (task, rows, _added(tok, "zebra"), data),
    "the chat template": lambda task, rows, tok, data: (task, rows, _set(tok, chat_template="{{ messages }}"),
                                                        data),
}


def _set(tokenizer, **settings):
    for key, value in settings.items():
        setattr(tokenizer, key, value)
    return tokenizer


def _added(tokenizer, token: str):
    tokenizer.add_tokens([token])
    return tokenizer


def test_a_change_to_lmtune_code_changes_the_key(tiny_bert, monkeypatch):
    """An edited encoder (an editable install, a fix) must not be served the old encoding's features."""
    before = cache_key(classifier(), reviews(), AutoTokenizer.from_pretrained(tiny_bert), DATA)
    monkeypatch.setattr(token_cache, "_code_digest", lambda: "another version of the code")
    assert cache_key(classifier(), reviews(), AutoTokenizer.from_pretrained(tiny_bert), DATA) != before


@pytest.mark.parametrize("change", list(CHANGES))
def test_anything_that_decides_the_features_changes_the_key(tiny_bert, change):
    def fresh():
        return classifier(), reviews(), AutoTokenizer.from_pretrained(tiny_bert), DATA
    assert cache_key(*fresh()) == cache_key(*fresh())
    assert cache_key(*CHANGES[change](*fresh())) != cache_key(*fresh())


def test_a_changed_row_is_encoded_again(tmp_path, bert, monkeypatch):
    task = classifier()
    calls = counting(monkeypatch, task)
    cached_encode(task, reviews(), bert, DATA, tmp_path)
    features, hit, _ = cached_encode(task, reviews().assign(label=["bad", "bad", "good"]), bert, DATA, tmp_path)
    assert not hit and len(calls) == 2 and features[0]["labels"] == 0


def test_the_key_ignores_what_a_tokenizer_call_leaves_behind(bert):
    before = cache_key(classifier(), reviews(), bert, DATA)
    bert(["the film"], truncation=True, max_length=7, padding="max_length")  # sets the backend's truncation
    assert cache_key(classifier(), reviews(), bert, DATA) == before


def test_slow_tokenizers_are_keyed_by_their_saved_files(tiny_bert):
    slow = BertTokenizerLegacy.from_pretrained(tiny_bert)
    assert not slow.is_fast
    key = cache_key(classifier(), reviews(), slow, DATA)
    assert key == cache_key(classifier(), reviews(), BertTokenizerLegacy.from_pretrained(tiny_bert), DATA)
    assert key != cache_key(classifier(), reviews(), _added(slow, "zebra"), DATA)
    assert key != cache_key(classifier(), reviews(), AutoTokenizer.from_pretrained(tiny_bert), DATA)


# -- every task's features come back exactly ----------------------------------------------------------------

def _qa_rows() -> pd.DataFrame:
    context = "aa bb cc dd ee ff gg hh ii jj kk ll"
    return frame(id=["q1"], title=["t"], context=[context], question=["q?"],
                 answers=[[{"text": "ff", "answer_start": context.index("ff")}]])


CASES = {
    "classification": (classifier, reviews, "bert", DATA),
    "multi-label": (lambda: Classification(TaskConfig(multi_label=True), labels=["food", "service"]),
                    lambda: frame(text=["good food", "bad service"], label=[["food"], ["food", "service"]]), "bert",
                    DATA),
    "sentence pairs": (lambda: Classification(TaskConfig(), labels=["0", "1"], pair=True),
                       lambda: frame(text=["good", "bad"], text_pair=["great", "good"], label=["1", "0"]), "bert",
                       DATA),
    "regression": (lambda: Regression(TaskConfig(name="regression"), targets=["a", "b"], mean=[0.5, 1.0],
                                      std=[2.0, 3.0]),
                   lambda: frame(text=["good", "bad"], label=[[1.0, 2.5], [0.0, -1.0]]), "bert", DATA),
    "token-classification": (lambda: TokenClassification(TaskConfig(name="token-classification"),
                                                         labels=["O", "B-PER", "I-PER"]),
                             lambda: frame(tokens=[["john", "smith", "ran"], ["away"]],
                                           tags=[["B-PER", "I-PER", "O"], ["O"]]), "bert", DATA),
    "question-answering": (lambda: QuestionAnswering(TaskConfig(name="question-answering")), _qa_rows, "bert",
                           DataConfig(max_length=16, doc_stride=4)),
    "sft": (lambda: SFT(TaskConfig(name="sft")), lambda: frame(messages=[CHAT, CHAT[:2]]), "llama",
            DataConfig(max_length=64)),
    "mlm": (lambda: MaskedLM(TaskConfig(name="mlm")), lambda: frame(text=["the film was good", "bad food"] * 5),
            "bert", DATA),
    "clm": (lambda: CausalLM(TaskConfig(name="clm")), lambda: frame(text=["the cat sat on the mat"] * 5), "llama",
            DataConfig(max_length=16)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_is_exact(tmp_path, case, bert, llama):
    make_task, make_rows, which, data = CASES[case]
    tokenizer = {"bert": bert, "llama": llama}[which]
    encoded = make_task().encode(make_rows(), tokenizer, data)
    first, hit, _ = cached_encode(make_task(), make_rows(), tokenizer, data, tmp_path)
    assert not hit and repr(first) == repr(encoded)
    loaded, hit, _ = cached_encode(make_task(), make_rows(), tokenizer, data, tmp_path)
    assert hit and repr(loaded) == repr(encoded)  # repr: also the types (1 vs 1.0, None, nested lists)


# -- what encode() leaves besides the features ------------------------------------------------------------


def test_sft_hit_repeats_the_length_counts_and_the_chat_template(tmp_path, llama, tiny_llama):
    rows, data = frame(messages=[CHAT, CHAT[:2]]), DataConfig(max_length=48)
    llama.chat_template = None  # a base model's tokenizer: sft gives it the fallback template
    cold = SFT(TaskConfig(name="sft"))
    _, hit, cold_lengths = cached_encode(cold, rows, llama, data, tmp_path)
    assert not hit and cold_lengths == {"truncated": 1, "dropped": 0} and llama.chat_template == FALLBACK_TEMPLATE
    fresh, warm = AutoTokenizer.from_pretrained(tiny_llama), SFT(TaskConfig(name="sft"))
    fresh.chat_template = None
    _, hit, warm_lengths = cached_encode(warm, rows, fresh, data, tmp_path)
    assert hit and warm_lengths == cold_lengths and fresh.chat_template == FALLBACK_TEMPLATE


def test_hit_repeats_the_warnings(tmp_path, bert):
    task = TokenClassification(TaskConfig(name="token-classification"), labels=["O", "B-PER", "I-PER"])
    rows, data = frame(tokens=[["john", "smith", "ran", "away"]], tags=[["B-PER", "I-PER", "O", "O"]]), \
        DataConfig(max_length=9)
    for expect_hit in (False, True):
        with pytest.warns(UserWarning, match="1 of 1 sentences are longer than max_length=9"):
            assert cached_encode(task, rows, bert, data, tmp_path)[1] is expect_hit


# -- what is not cached, and damaged files ---------------------------------------------------------------


class Fixed(Task):
    """A task whose encode() returns the features it was given."""

    name = "fixed"

    def __init__(self, features: list[dict]):
        super().__init__()
        self.features = features

    def state(self) -> dict:
        return {"features": repr(self.features)}

    def encode(self, rows, tokenizer, data) -> list[dict]:
        return self.features


@pytest.mark.parametrize("features", [
    [{"a": 1}, {"a": 2.5}],  # Arrow would make the 1 a 1.0
    [{"a": 1}, {"a": 2, "b": 3}],  # Arrow takes its columns from the first row
    [{"a": (1, 2)}],  # a tuple comes back as a list
    [{"a": 2**70}],  # too big for int64
])
def test_features_arrow_would_change_are_not_cached(tmp_path, bert, capsys, features):
    for _ in range(2):
        assert cached_encode(Fixed(features), reviews(), bert, DATA, tmp_path)[:2] == (features, False)
    assert "not cached" in capsys.readouterr().out and not list(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_file_is_ignored_and_rewritten(tmp_path, bert, damage):
    first, _, _ = cached_encode(classifier(), reviews(), bert, DATA, tmp_path)
    [path] = tmp_path.glob("*.arrow")
    whole = path.read_bytes()
    path.write_bytes(b"not an arrow file" if damage == "garbage" else whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match="unreadable token cache file"):
        features, hit, _ = cached_encode(classifier(), reviews(), bert, DATA, tmp_path)
    assert not hit and repr(features) == repr(first) and path.read_bytes() == whole
    assert cached_encode(classifier(), reviews(), bert, DATA, tmp_path)[1]


def test_least_recently_used_files_go_beyond_the_limit(tmp_path):
    for age, name in enumerate(["newest", "middle", "oldest"]):
        path = tmp_path / f"{name}.arrow"
        path.write_bytes(b"x" * 10)
        os.utime(path, (1000 - age, 1000 - age))
    prune(tmp_path, limit=25)
    assert sorted(p.stem for p in tmp_path.iterdir()) == ["middle", "newest"]
    prune(tmp_path, limit=5)
    assert [p.stem for p in tmp_path.iterdir()] == ["newest"]  # the newest stays, whatever its size


def test_cache_folder_follows_the_environment_and_the_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("LMTUNE_TOKEN_CACHE", str(tmp_path / "tok"))
    assert cache_dir(DataConfig()) == tmp_path / "tok"
    assert cache_dir(DataConfig(cache_tokenized=False)) is None
    monkeypatch.delenv("LMTUNE_TOKEN_CACHE")
    monkeypatch.setenv("LMTUNE_HOME", str(tmp_path / "home"))
    assert cache_dir(DataConfig()) == tmp_path / "home" / "tokenized"


# -- runs ---------------------------------------------------------------------------------------------------


def test_runs_report_cached_features_and_the_switch_writes_nothing(tmp_path, tiny_bert, monkeypatch):
    folder = tmp_path / "tokenized"
    monkeypatch.setenv("LMTUNE_TOKEN_CACHE", str(folder))
    rows = [(f"the film {'good' if i % 2 else 'bad'} {i}", "good" if i % 2 else "bad") for i in range(20)]
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")

    def run(cache: bool) -> dict:
        return train({"output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                      "data": {"train": str(tmp_path / "train.csv"), "max_length": 32, "cache_tokenized": cache},
                      "task": {"baselines": False},
                      "train": {"max_steps": 1, "batch_size": 8, "seed": 1}}).metrics

    off = run(cache=False)
    assert off["data"]["tokenized_from_cache"] == {"train": False, "validation": False, "test": False}
    assert not folder.exists()
    assert run(cache=True)["data"]["tokenized_from_cache"] == off["data"]["tokenized_from_cache"]
    assert len(list(folder.glob("*.arrow"))) == 3
    warm = run(cache=True)
    assert warm["data"]["tokenized_from_cache"] == {"train": True, "validation": True, "test": True}
    assert warm["validation"] == off["validation"]
