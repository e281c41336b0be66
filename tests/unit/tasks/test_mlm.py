"""Masked-LM task: plain-text reading, block packing, BERT's 80/10/10 masking, the masked-positions-only
loss, deterministic evaluation, fill-mask prediction, and the saved folder loading as a classifier."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from lmtune.api import Predictor, evaluate, train
from lmtune.config import DataConfig, TaskConfig, build_config
from lmtune.data.lines import read_lines
from lmtune.errors import DataError
from lmtune.tasks.lm_loss import masked_loss
from lmtune.tasks.mlm import MaskedLM, group_blocks


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def test_read_lines_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first line\n\n   \nsecond  line\r\nthird\n", encoding="utf-8")
    df = read_lines(path)
    assert df["text"].tolist() == ["first line", "second  line", "third"]
    assert list(df.index) == [1, 4, 5] and df.attrs["file"] == str(path)
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="no text"):
        read_lines(tmp_path / "blank.txt")


def test_blocks_keep_every_token(tokenizer):
    docs = [list(range(100, 123)), [200, 201], list(range(300, 317))]  # 23 + 2 + 17 tokens
    blocks = group_blocks(docs, tokenizer, max_length=10)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert all(b["input_ids"][0] == cls and b["input_ids"][-1] == sep for b in blocks)
    assert all(len(b["input_ids"]) == 10 for b in blocks[:-1]) and len(blocks[-1]["input_ids"]) <= 10
    inner = [t for b in blocks for t in b["input_ids"][1:-1]]
    # Documents in order, a [SEP] between consecutive ones, nothing dropped: 23 + 1 + 2 + 1 + 17 = 44 tokens.
    assert inner == [*docs[0], sep, *docs[1], sep, *docs[2]]
    assert len(blocks) == math.ceil(44 / 8)
    assert all(b["attention_mask"] == [1] * len(b["input_ids"]) for b in blocks)


def test_masking_follows_the_80_10_10_rule(tokenizer):
    task = MaskedLM(TaskConfig(name="mlm"))
    g = torch.Generator().manual_seed(0)
    content = torch.randint(5, len(tokenizer), (256, 126), generator=g).tolist()  # no special tokens
    features = [{"input_ids": [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id], "attention_mask": [1] * 128}
                for ids in content]
    original = torch.tensor([f["input_ids"] for f in features])
    batch = task.collate(tokenizer, seed=3)(features)
    labels, inputs = batch["labels"], batch["input_ids"]
    masked = labels != -100
    assert (labels[masked] == original[masked]).all()  # the label is the original token ...
    assert (inputs[~masked] == original[~masked]).all()  # ... and unmasked positions are untouched
    special = (original == tokenizer.cls_token_id) | (original == tokenizer.sep_token_id)
    assert not masked[special].any()
    n = int(masked.sum())
    assert n / int((~special).sum()) == pytest.approx(0.15, abs=0.01)
    as_mask = (inputs[masked] == tokenizer.mask_token_id).float().mean().item()
    unchanged = (inputs[masked] == original[masked]).float().mean().item()
    # About 4,900 masked tokens: the binomial standard deviation of each share is under 0.006.
    assert as_mask == pytest.approx(0.8, abs=0.02)
    assert unchanged == pytest.approx(0.1, abs=0.02)  # (+ the 1-in-vocab chance a random token is the same)
    assert 1 - as_mask - unchanged == pytest.approx(0.1, abs=0.02)


def tiny_inputs(tokenizer, n: int = 6) -> list[dict]:
    texts = ["the film was good and the food was great", "service bad", "i love the film"] * n
    return group_blocks(tokenizer(texts, add_special_tokens=False)["input_ids"], tokenizer, max_length=16)


def test_masked_positions_loss_matches_the_full_head(tiny_bert, tokenizer):
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert).eval()
    batch = MaskedLM(TaskConfig(name="mlm")).collate(tokenizer, seed=1)(tiny_inputs(tokenizer))
    total, count = masked_loss(model, batch)
    labels = batch.pop("labels")
    reference = model(**batch, labels=labels).loss  # transformers' own loss: mean over masked tokens
    assert count == int((labels != -100).sum()) > 0
    assert (total / count).item() == pytest.approx(reference.item(), rel=1e-5)
    assert not model.get_output_embeddings()._forward_pre_hooks  # the hook is removed afterwards


def test_evaluation_masking_is_deterministic(tiny_bert, tokenizer):
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    task, features = MaskedLM(TaskConfig(name="mlm")), tiny_inputs(tokenizer)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    first, records = task.evaluate(model, tokenizer, None, features, batch_size=4)
    assert torch.equal(torch.get_rng_state(), state)  # training's random stream is left alone
    assert task.evaluate(model, tokenizer, None, features, batch_size=4)[0] == first and records == []
    # Another batch size masks the same tokens; only float summation order differs.
    other, _ = task.evaluate(model, tokenizer, None, features, batch_size=3)
    assert other["masked_tokens"] == first["masked_tokens"]
    assert other["perplexity"] == pytest.approx(first["perplexity"], rel=1e-5)
    assert first["perplexity"] == pytest.approx(math.exp(first["loss"]), rel=1e-4)


def corpus(path: Path) -> str:
    lines = [f"the {w} was {a} and i {v} the {w} {i}" for i, (w, a, v) in
             enumerate([("film", "good", "love"), ("food", "bad", "hate"), ("service", "great", "love")] * 8)]
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def mlm_run(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlm")
    return train({"name": "m", "output_dir": str(tmp / "runs"), "task": {"name": "mlm"},
                  "model": {"name": tiny_bert},
                  "data": {"train": corpus(tmp / "corpus.txt"), "max_length": 24, "validation_size": 0.25},
                  "train": {"max_steps": 6, "batch_size": 4, "lr": 1e-3, "seed": 1, "eval_before": True}})


def test_training_lowers_perplexity_and_evaluate_reproduces_it(mlm_run):
    before, after = mlm_run.metrics["validation_before"], mlm_run.metrics["validation"]
    assert after["perplexity"] < before["perplexity"]
    assert after["masked_tokens"] == before["masked_tokens"] > 0
    assert mlm_run.metrics["data"]["sources"]["validation"].startswith("split of")
    # `lmtune evaluate` on a file: the same perplexity every time.
    data = DataConfig(train=str(mlm_run.path.parent.parent / "corpus.txt"), max_length=24)
    first = evaluate(mlm_run.path, data, batch_size=4)
    assert evaluate(mlm_run.path, data, batch_size=4) == first and first["blocks"] > after["blocks"]


def test_fill_mask_prediction(mlm_run):
    out = Predictor(mlm_run.path).predict(["the [MASK] was good", "no mask here", "[MASK] [MASK]"])
    assert [len(r["masks"]) for r in out] == [1, 0, 2]
    assert len(out[0]["masks"][0]) == 5 and set(out[0]["masks"][0][0]) == {"token", "score"}
    scores = [c["score"] for c in out[0]["masks"][0]]
    assert scores == sorted(scores, reverse=True)
    assert Predictor(mlm_run.path).predict(["the [MASK] was good"])[0]["masks"] == out[0]["masks"]  # one text


def test_mlm_folder_loads_as_classifier_and_fine_tunes(mlm_run, tmp_path):
    mlm = AutoModelForMaskedLM.from_pretrained(mlm_run.model_dir)
    clf = AutoModelForSequenceClassification.from_pretrained(mlm_run.model_dir, num_labels=2)
    assert torch.equal(clf.bert.encoder.layer[1].output.dense.weight, mlm.bert.encoder.layer[1].output.dense.weight)
    data = tmp_path / "s.csv"
    data.write_text("text,label\n" + "".join(f"the film {w} {i},{w}\n" for i in range(20)
                                             for w in ("good", "bad")), encoding="utf-8")
    run = train({"name": "c", "output_dir": str(tmp_path / "runs"), "model": {"name": str(mlm_run.model_dir)},
                 "data": {"train": str(data), "max_length": 16}, "train": {"max_steps": 2, "batch_size": 8}})
    assert run.metrics["task"] == "classification" and "accuracy" in run.metrics["test"]


def test_table_input_uses_the_text_column(tmp_path, tiny_bert):
    path = tmp_path / "c.csv"
    path.write_text("id,body\n1,the film was good\n2,\n3,the food was bad\n", encoding="utf-8")
    cfg = build_config({"task": {"name": "mlm"}, "data": {"train": str(path), "text_column": "body",
                                                          "validation_size": 0, "test_size": 0}})
    splits, report = MaskedLM(cfg.task).load(cfg)
    assert splits["train"]["text"].tolist() == ["the film was good", "the food was bad"]  # the empty cell skipped
    assert list(splits["train"].index) == [1, 3]
