"""Token classification: CoNLL/JSONL readers, label alignment, tag repair, seqeval metrics, entity offsets
and a tiny end-to-end run on the tiny_bert fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from lmtune.api import Predictor, train
from lmtune.config import DataConfig, ModelConfig, TaskConfig, build_config
from lmtune.data.conll import read_tagged
from lmtune.data.scripts import join_words
from lmtune.data.splits import return_unseen
from lmtune.errors import DataError
from lmtune.evaluation.tagging import best_valid_tags, entity_spans, repair_tags, tagging_metrics
from lmtune.tasks.token_classification import (
    IGNORE,
    TokenClassification,
    _encode_words,
    align_labels,
)

CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
Smith NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

Acme NNP B-NP B-ORG
hired VBD B-VP O
Mary NNP B-NP B-PER


-DOCSTART- -X- -X- O
Paris NNP B-NP B-LOC
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- readers -----------------------------------------------------------------------------------------


def test_conll_sentences_docstart_skipped_last_column_is_the_tag(tmp_path):
    df = read_tagged(write(tmp_path, "train.txt", CONLL))
    assert list(df.index) == [1, 2, 3]
    assert df.loc[1, "tokens"] == ["John", "Smith", "visited", "Paris", "."]
    assert df.loc[1, "tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert df.loc[2, "tags"] == ["B-ORG", "O", "B-PER"]
    assert df.loc[3, "tokens"] == ["Paris"]  # a DOCSTART line ends a sentence even without a blank line
    assert df["line"].tolist() == [3, 9, 15]


def test_conll_tag_column_chosen_by_position(tmp_path):
    df = read_tagged(write(tmp_path, "train.txt", CONLL), tag_column=2)
    assert df.loc[1, "tags"] == ["B-NP", "I-NP", "B-VP", "B-NP", "O"]


def test_conll_width_mismatch_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.txt", "John NNP B-NP B-PER\nSmith I-PER\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 2 has 2 columns where the first token line \(1\) has 4"):
        read_tagged(path)


@pytest.mark.parametrize("column", [4, -5, 0])
def test_conll_tag_column_out_of_range(tmp_path, column):
    path = write(tmp_path, "train.txt", "\n\nJohn NNP B-NP B-PER\n")
    with pytest.raises(DataError, match=rf"train\.txt: line 3: tag column {column} is out of range"):
        read_tagged(path, tag_column=column)


def test_conll_wrong_tag_column_is_caught_by_tag_shape(tmp_path):
    path = write(tmp_path, "train.txt", CONLL)
    with pytest.raises(DataError, match=r"line 3, column 1: 'NNP' is not a BIO/BIOES tag"):
        read_tagged(path, tag_column=1)


def test_jsonl_records_and_length_mismatch(tmp_path):
    good = {"tokens": ["John", "Smith"], "tags": ["B-PER", "I-PER"]}
    df = read_tagged(write(tmp_path, "d.jsonl", json.dumps(good) + "\n"))
    assert df.loc[1, "tokens"] == ["John", "Smith"] and df.loc[1, "line"] is None
    bad = {"tokens": ["a", "b", "c"], "tags": ["O", "O"]}
    path = write(tmp_path, "e.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"e\.jsonl: record 2, field 'tags': 2 tags for 3 tokens"):
        read_tagged(path)


def test_json_record_missing_field(tmp_path):
    path = write(tmp_path, "d.json", json.dumps([{"tokens": ["a"], "labels": ["O"]}]))
    with pytest.raises(DataError, match="records need a 'tags' field"):
        read_tagged(path)


def test_validation_tag_unseen_in_training_names_the_line(tmp_path):
    train_file = write(tmp_path, "train.txt", "John B-PER\n\nParis B-LOC\n")
    valid_file = write(tmp_path, "valid.txt", "Acme B-ORG\n\nJohn O\nX B-MISC\n")
    cfg = build_config({"task": {"name": "token-classification"},
                        "data": {"train": str(train_file), "validation": str(valid_file), "test_size": 0}})
    with pytest.raises(DataError, match=r"valid\.txt: line 1: tag 'B-ORG' never occurs in the training data"):
        TokenClassification(cfg.task).load(cfg)


def test_carved_sentence_with_a_rare_tag_goes_back_to_train():
    train_rows = pd.DataFrame({"tokens": [["John"], ["Mary"]], "tags": [["B-PER"], ["B-PER"]]}, index=[1, 3])
    held = pd.DataFrame({"tokens": [["Rome"], ["Ann"]], "tags": [["B-LOC"], ["B-PER"]]}, index=[2, 4])
    splits = {"train": train_rows, "validation": held}
    with pytest.warns(UserWarning, match="moved 1 validation sentence"):
        return_unseen(splits, ["validation"], "tags", "sentence")
    assert list(splits["train"].index) == [1, 2, 3] and list(splits["validation"].index) == [4]


# -- encoding ----------------------------------------------------------------------------------------


def test_first_subtoken_labelled_rest_and_specials_ignored(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    task = TokenClassification(TaskConfig(name="token-classification"), labels=["O", "B-PER", "I-PER"])
    rows = pd.DataFrame({"tokens": [["Jo", "Smith", "ran"]], "tags": [["B-PER", "I-PER", "O"]]}, index=[1])
    feature = task.encode(rows, tokenizer, DataConfig())[0]
    # The char-level vocabulary splits every word into letters: [CLS] j ##o s ##m ##i ##t ##h r ##a ##n [SEP]
    assert tokenizer.convert_ids_to_tokens(feature["input_ids"]) == [
        "[CLS]", "j", "##o", "s", "##m", "##i", "##t", "##h", "r", "##a", "##n", "[SEP]"]
    assert feature["labels"] == [IGNORE, 1, IGNORE, 2, IGNORE, IGNORE, IGNORE, IGNORE, 0, IGNORE, IGNORE, IGNORE]
    batch = task.collate(tokenizer)([feature, task.encode(rows.assign(tokens=[["a"]], tags=[["O"]]), tokenizer,
                                                          DataConfig())[0]])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}  # word_ids dropped
    assert batch["labels"][1].tolist() == [IGNORE, 0, IGNORE] + [IGNORE] * 9  # padding is ignored too


def test_align_labels_truncated_sentence():
    # words 0 and 1 survive (word 1 cut after its first sub-token), word 2 is gone
    assert align_labels([None, 0, 0, 1, None], [5, 6, 7]) == [IGNORE, 5, IGNORE, 6, IGNORE]


# -- tag repair --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tags", "bioes", "expected"), [
    (["O", "I-PER", "I-PER"], False, ["O", "B-PER", "I-PER"]),                # I after O starts a chunk
    (["B-LOC", "I-PER", "O"], False, ["B-LOC", "B-PER", "O"]),                # type change starts a chunk
    (["I-ORG", "B-ORG", "I-ORG"], False, ["B-ORG", "B-ORG", "I-ORG"]),        # sentence start
    (["B-PER", "I-PER", "O", "I-LOC"], False, ["B-PER", "I-PER", "O", "B-LOC"]),
    (["B-PER", "O"], True, ["S-PER", "O"]),                                   # BIOES: a chunk must end
    (["O", "I-PER", "E-PER"], True, ["O", "B-PER", "E-PER"]),
    (["E-LOC", "I-LOC", "I-LOC"], True, ["S-LOC", "B-LOC", "E-LOC"]),
    (["B-PER", "I-PER", "B-LOC"], True, ["B-PER", "E-PER", "S-LOC"]),
    (["B-PER", "E-PER", "S-LOC", "O"], True, ["B-PER", "E-PER", "S-LOC", "O"]),  # valid: unchanged
])
def test_repair_tags(tags, bioes, expected):
    assert repair_tags(tags, bioes) == expected


BIO = ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def decoded(rows: list[list[float]], labels: list[str], bioes: bool = False) -> list[str]:
    return [labels[i] for i in best_valid_tags(np.log(np.array(rows)), labels, bioes)]


def test_a_wavering_word_inside_an_entity_no_longer_splits_it():
    # Word 2 alone prefers O (0.5), which argmax + repair reads as ORG, O, ORG: two wrong entities.
    # As one ORG the sentence scores .9*.8*.45*.8 = 0.259 > .9*.8*.5*(.1: B-ORG at 3) = 0.036.
    rows = [[.05, .9, .02, .02, .01], [.05, .05, .8, .05, .05], [.5, .03, .45, .01, .01], [.05, .1, .8, .03, .02]]
    assert decoded(rows, BIO) == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]
    argmax = [BIO[int(np.argmax(r))] for r in rows]
    assert repair_tags(argmax) == ["B-ORG", "I-ORG", "O", "B-ORG"]


def test_inside_tags_follow_their_own_type_and_never_start():
    # I-PER is each word's favourite, but it can neither start the sentence nor follow B-ORG.
    rows = [[.1, .3, .0, .2, .4], [.05, .0, .2, .05, .7]]
    rows = [[max(p, 1e-6) for p in r] for r in rows]
    assert decoded(rows, BIO) == ["B-PER", "I-PER"]  # .2*.7 beats B-ORG I-ORG .3*.2 and B-ORG O .3*.05


def test_bioes_chunks_are_closed():
    labels = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    rows = [[.1, .6, .1, .1, .1], [.5, .1, .1, .2, .1]]  # B-LOC then O would leave the chunk open
    assert decoded(rows, labels, bioes=True) == ["B-LOC", "E-LOC"]  # .6*.2 beats S-LOC O .1*.5 and O O .05


# -- metrics -----------------------------------------------------------------------------------------


def test_entity_metrics_hand_worked():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    # Gold entities: PER(0-1), LOC(3), ORG(0'), PER(2') = 4. Predicted: PER(0-1), ORG(3), ORG(0') = 3.
    # Correct: PER(0-1), ORG(0') = 2 -> precision 2/3, recall 2/4, F1 = 2*(2/3)(1/2)/(2/3+1/2) = 4/7.
    # Per type: PER p=1/1 r=1/2 f1=2/3; LOC p=0 r=0 (0 predicted); ORG p=1/2 r=1/1 f1=2/3.
    # Words: 7, correct 5 (the LOC/ORG word and the missed PER word are wrong) -> accuracy 5/7.
    m = tagging_metrics(gold, pred)
    assert m["overall_precision"] == pytest.approx(2 / 3)
    assert m["overall_recall"] == pytest.approx(1 / 2)
    assert m["overall_f1"] == pytest.approx(4 / 7)
    assert m["overall_accuracy"] == pytest.approx(5 / 7)
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["ORG"]["precision"] == 0.5 and m["per_type"]["ORG"]["recall"] == 1.0


def test_metrics_without_any_entity_are_zero_not_nan():
    m = tagging_metrics([["O", "O"]], [["O", "O"]])
    assert m["overall_f1"] == 0.0 and m["overall_accuracy"] == 1.0 and m["per_type"] == {}


# -- entity spans ------------------------------------------------------------------------------------


def test_entity_char_offsets_on_a_known_sentence():
    text = "John Smith lives in New York."
    spans = [(0, 4), (5, 10), (11, 16), (17, 19), (20, 23), (24, 28), (28, 29)]
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    scores = [0.9, 0.7, 0.99, 0.99, 0.6, 0.8, 0.99]
    assert entity_spans(tags, scores, spans, text) == [
        {"entity": "PER", "text": "John Smith", "start": 0, "end": 10, "score": 0.8},
        {"entity": "LOC", "text": "New York", "start": 20, "end": 28, "score": 0.7},
    ]


def test_predict_offsets_from_the_tokenizer(tiny_bert, monkeypatch):
    """Raw text is split into words by the tokenizer; fixed per-word tags stand in for the model."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    task = TokenClassification(TaskConfig(name="token-classification"), labels=["O", "B-PER", "I-PER"])

    def fixed(model, tokenizer, features, n_words, batch_size):
        assert n_words == [4, 2]  # "Hi", "John", "Smith", "!" ; "Jo", "Smith"
        return [(["O", "B-PER", "I-PER", "O"], [1.0, 0.5, 0.7, 1.0]), (["B-PER", "I-PER"], [0.5, 0.5])]

    monkeypatch.setattr(task, "word_tags", fixed)
    out = task.predict(None, tokenizer, pd.DataFrame({"text": ["Hi  John Smith!", "Jo Smith"]}, index=[1, 2]), 8)
    assert out[0]["entities"] == [{"entity": "PER", "text": "John Smith", "start": 4, "end": 14, "score": 0.6}]
    assert out[1]["entities"][0]["text"] == "Jo Smith"
    rows = pd.DataFrame({"tokens": [["Hi", "John", "Smith", "!"], ["Jo", "Smith"]]}, index=[1, 2])
    out = task.predict(None, tokenizer, rows, 8)
    assert out[0]["text"] == "Hi John Smith !"
    assert out[0]["entities"] == [{"entity": "PER", "text": "John Smith", "start": 3, "end": 13, "score": 0.6}]
    assert out[0]["tags"] == ["O", "B-PER", "I-PER", "O"]


def test_chinese_text_is_tagged_one_character_at_a_time(tiny_bert, monkeypatch):
    """Chinese raw text splits into characters, as the one-character-per-line training files do, whatever the
    tokenizer's own idea of a word; pre-tokenised characters are joined without spaces."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    task = TokenClassification(TaskConfig(name="token-classification"), labels=["O", "B-NAME", "I-NAME"])

    def fixed(model, tokenizer, features, n_words, batch_size):
        assert n_words == [5]  # 高 勇 ， 男 and the trailing "ok"
        return [(["B-NAME", "I-NAME", "O", "O", "O"], [0.8, 0.6, 1.0, 1.0, 1.0])]

    monkeypatch.setattr(task, "word_tags", fixed)
    out = task.predict(None, tokenizer, pd.DataFrame({"text": ["高勇，男 ok"]}, index=[1]), 8)
    assert out[0]["text"] == "高勇，男 ok"
    assert out[0]["entities"] == [{"entity": "NAME", "text": "高勇", "start": 0, "end": 2, "score": 0.7}]
    out = task.predict(None, tokenizer, pd.DataFrame({"tokens": [["高", "勇", "，", "男", "ok"]]}, index=[1]), 8)
    assert out[0]["text"] == "高勇，男 ok"
    assert out[0]["entities"][0]["text"] == "高勇"


@pytest.mark.parametrize(("words", "text"), [
    (["John", "Smith", "!"], "John Smith !"), (["高", "勇", "，", "男"], "高勇，男"),
    (["在", "IBM", "工作"], "在 IBM 工作"), (["「", "好", "」", "。"], "「好」。"), ([], ""),
])
def test_words_are_joined_as_the_language_is_written(words, text):
    joined, spans = join_words(words)
    assert joined == text
    assert [joined[s:e] for s, e in spans] == words


# -- end to end --------------------------------------------------------------------------------------


def test_tiny_end_to_end_train_evaluate_predict(tiny_bert, tmp_path):
    sentences = [(["john", "smith", "ran"], ["B-PER", "I-PER", "O"]), (["paris", "is", "big"], ["B-LOC", "O", "O"]),
                 (["mary", "saw", "rome"], ["B-PER", "O", "B-LOC"])] * 8
    data = write(tmp_path, "train.jsonl", "".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in sentences))
    run = train({"name": "t", "output_dir": str(tmp_path / "runs"), "task": {"name": "token-classification"},
                 "model": {"name": tiny_bert}, "data": {"train": str(data), "validation_size": 0.25, "test_size": 0},
                 "train": {"max_steps": 3, "batch_size": 4, "precision": "fp32"}})
    metrics = run.metrics["validation"]
    assert 0.0 <= metrics["overall_f1"] <= 1.0 and metrics["sentences"] == 6
    assert list(run.metrics["data"]["labels"]) == ["O", "B-LOC", "B-PER", "I-PER"]  # "O" first, by type
    saved = json.loads((run.model_dir / "lmtune.json").read_text())
    assert saved["labels"] == ["O", "B-LOC", "B-PER", "I-PER"]
    records = [json.loads(line) for line in (run.path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 6 and set(records[0]) == {"row", "tokens", "gold", "tags"}
    assert len(records[0]["tags"]) == len(records[0]["gold"])
    out = Predictor(run.path).predict(["john smith saw paris"])
    assert out[0]["text"] == "john smith saw paris"
    assert all(e["text"] == out[0]["text"][e["start"]:e["end"]] for e in out[0]["entities"])


def test_truncated_sentence_is_warned_and_scored_with_o(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    task = TokenClassification(TaskConfig(name="token-classification"), labels=["O", "B-PER", "I-PER"])
    rows = pd.DataFrame({"tokens": [["john", "smith", "ran", "away"]], "tags": [["B-PER", "I-PER", "O", "B-PER"]]},
                        index=[1])
    with pytest.warns(UserWarning, match="1 of 1 sentences are longer than max_length=9"):
        features = task.encode(rows, tokenizer, DataConfig(max_length=9))  # [CLS] j o h n s m i [SEP]
    model = task.build_model(tiny_bert, ModelConfig(name=tiny_bert))
    metrics, records = task.evaluate(model, tokenizer, rows, features, batch_size=2)
    assert metrics["truncated"] == 1
    assert len(records[0]["tags"]) == 4 and records[0]["tags"][2:] == ["O", "O"]  # cut words predicted 'O'


def test_sentencepiece_word_start_markers_are_dropped_before_characters():
    """An XLM-R-style tokenizer splits a pre-split "高" into "▁", "高"; the label must sit on "高"."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "▁": 1, "高": 2, "勇": 3, "o": 4, "k": 5, "ok": 6, "▁ok": 7}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[("o", "k"), ("▁", "ok")], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    assert tokenizer(["高", "ok"], is_split_into_words=True).input_ids == [1, 2, 7]  # the marker is there...
    feature = _encode_words([["高", "勇", "ok"]], tokenizer, 16)[0]
    assert tokenizer.convert_ids_to_tokens(feature["input_ids"]) == ["高", "勇", "▁ok"]  # ...and dropped here
    assert feature["word_ids"] == [0, 1, 2] and feature["attention_mask"] == [1, 1, 1]
