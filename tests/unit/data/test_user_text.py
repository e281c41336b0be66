"""The user's text comes back exactly as sent (cleaning is for the model's input only), generated text never
ends inside a character, and generate refuses encoder runs in words."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import lmtune

from lmtune.api import Predictor
from lmtune.generation.generate import Generator, Settings
from lmtune.serving.batch_predict import predict_file

pytestmark = pytest.mark.usefixtures("one_thread")

CHINESE = "很好吃，送得很快"  # a full-width comma, which NFKC cleaning turns into ","


def test_predict_echoes_the_text_as_given(tiny_run, tmp_path, capsys):
    assert Predictor(tiny_run).predict([CHINESE, "  two  spaces "])[0]["text"] == CHINESE
    path = tmp_path / "in.csv"
    path.write_text(f'text\n"{CHINESE}"\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    predict_file(tiny_run, str(path), out)
    assert json.loads(out.read_text(encoding="utf-8"))["text"] == CHINESE


def test_evaluate_predictions_echo_the_text_as_given(tiny_run, tmp_path, monkeypatch, capsys):
    path = tmp_path / "eval.csv"
    path.write_text(f'text,label\n"{CHINESE}",good\nthe film bad,bad\n', encoding="utf-8")
    code, _, err = lmtune(monkeypatch, capsys, "evaluate", str(tiny_run), "--data", str(path),
                          "--output", str(tmp_path / "ev"))
    assert code == 0, err
    first = json.loads((tmp_path / "ev" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["text"] == CHINESE


class Scripted(torch.nn.Module):
    """A causal LM stand-in that 'generates' fixed token ids, feeding a streamer as transformers does."""

    def __init__(self, ids: list[int]):
        super().__init__()
        self.ids, self.weight = ids, torch.nn.Parameter(torch.zeros(1))

    def generate(self, input_ids, attention_mask=None, streamer=None, **_):
        new = torch.tensor([self.ids] * len(input_ids))
        if streamer is not None:
            streamer.put(input_ids)
            for token in new[0]:
                streamer.put(token[None])
            streamer.end()
        return torch.cat([input_ids, new], dim=1)


@pytest.mark.parametrize("complete", [False, True])
def test_generation_stops_on_a_character_boundary(tiny_llama, complete):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    head, char = tokenizer.encode("你好", add_special_tokens=False), tokenizer.encode("提", add_special_tokens=False)
    assert len(char) > 1  # the character is spread over byte tokens
    generator = Generator(Scripted(head + (char if complete else char[:-1])), tokenizer)
    expected = "你好提" if complete else "你好"
    assert generator.generate(["hi"], Settings(max_new_tokens=8)) == [expected]
    assert "".join(generator.stream("hi", Settings(max_new_tokens=8))) == expected


def test_generate_on_an_encoder_run_says_it_needs_a_causal_lm(tiny_run, monkeypatch, capsys):
    code, _, err = lmtune(monkeypatch, capsys, "generate", str(tiny_run), "-p", "hello")
    assert code == 2 and "Traceback" not in err
    assert "causal LM" in err and "classification" in err
