"""Frozen-layer caching for `method: freeze`: a cached step gives the uncached loss and gradients (dropout off),
the model is whole again after each loss call, a run trains the same with and without the cache, and every case the
cache cannot serve trains uncached with the reason reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM, RobertaConfig, RobertaForMaskedLM

from lmtune.api import train
from lmtune.config import build_config
from lmtune.methods import apply_method
from lmtune.models.load import load_tokenizer
from lmtune.tasks import new_task
from lmtune.training import frozen_cache

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_PROCESS = SimpleNamespace(num_processes=1, is_main_process=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """Sentences of varied lengths, so batches carry padding."""
    folder = tmp_path_factory.mktemp("frozen-cache-data")
    words = ["good", "bad", "great", "awful"]
    rows = [(f"the film {words[i % 4]} {'not ' * (i % 3)}{i * 37}", "good" if i % 4 in (0, 2) else "bad")
            for i in range(48)]
    (folder / "reviews.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    tagged = [(["john", "smith", "ran", "far"][: 2 + i % 3], ["B-PER", "I-PER", "O", "O"][: 2 + i % 3])
              for i in range(24)]
    tagged += [(["paris", "is", "big", "and", "old"][: 1 + i % 5], ["B-LOC", "O", "O", "O", "O"][: 1 + i % 5])
               for i in range(24)]
    (folder / "ner.jsonl").write_text("".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in tagged),
                                      encoding="utf-8")
    (folder / "text.txt").write_text("".join(f"the film was good and the food was bad {i}\n" for i in range(30)),
                                     encoding="utf-8")
    return {"classification": str(folder / "reviews.csv"), "token-classification": str(folder / "ner.jsonl"),
            "mlm": str(folder / "text.txt")}


def vocab_size(tiny_bert: str) -> int:
    return len((Path(tiny_bert) / "vocab.txt").read_text(encoding="utf-8").splitlines())


def tiny_variant(tiny_bert: str, folder: Path, model: torch.nn.Module) -> str:
    """Another architecture with tiny_bert's tokenizer."""
    for file in Path(tiny_bert).iterdir():
        if not file.name.startswith(("config", "model")):
            shutil.copy(file, folder)
    model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_roberta(tiny_bert, tmp_path_factory) -> str:
    """RoBERTa numbers positions from the first real token, so left padding leaves each example's output as is."""
    config = RobertaConfig(vocab_size=vocab_size(tiny_bert), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=130, pad_token_id=0,
                           type_vocab_size=2)
    return tiny_variant(tiny_bert, tmp_path_factory.mktemp("tiny-roberta"), RobertaForMaskedLM(config))


@pytest.fixture(scope="module")
def tiny_modernbert(tiny_bert, tmp_path_factory) -> str:
    """ModernBERT normalises the last layer's output, so the bottom layers alone do not give layer N's input."""
    config = ModernBertConfig(vocab_size=vocab_size(tiny_bert), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
                              cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3)
    return tiny_variant(tiny_bert, tmp_path_factory.mktemp("tiny-modernbert"), ModernBertForMaskedLM(config))


def prepared(model_path: str, train_file: str, task: str = "classification", **sections):
    """What api.train holds when it plans the cache: (cfg, task, tokenizer, model, training features)."""
    cfg = build_config({"task": {"name": task}, "model": {"name": model_path, "dropout": 0.0},
                        "data": {"train": train_file, "max_length": 32},
                        "method": {"name": "freeze", "freeze_layers": 1}, "train": {"precision": "fp32"},
                        **sections})
    the_task = new_task(cfg)
    splits = the_task.load(cfg)[0]
    tokenizer = load_tokenizer(model_path, cfg.model)
    features = the_task.encode(splits["train"], tokenizer, cfg.data)
    torch.manual_seed(0)
    model = apply_method(the_task.build_model(model_path, cfg.model), cfg.method, the_task.peft_task_type)
    the_task.precision = cfg.train.precision
    return cfg, the_task, tokenizer, model, features


def loss_and_grads(loss, model, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad(set_to_none=True)
    value = loss(model, batch)
    value.backward()
    return value.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(("task", "model", "side", "frozen"), [("classification", "tiny_bert", "right", 1),
                                                               ("classification", "tiny_bert", "right", 2),
                                                               ("token-classification", "tiny_bert", "right", 1),
                                                               ("token-classification", "tiny_roberta", "left", 1)])
def test_cached_step_gives_the_uncached_loss_and_gradients(task, model, side, frozen, data, request):
    """Left padding on RoBERTa only: BERT numbers positions from the first padding token, so there an example's
    output depends on the padding of the batch it is in, cached or not."""
    cfg, the_task, tokenizer, net, features = prepared(request.getfixturevalue(model), data[task], task,
                                                       method={"name": "freeze", "freeze_layers": frozen})
    tokenizer.padding_side = side
    collate = the_task.collate(tokenizer)
    cache, report = frozen_cache.plan(net, the_task, collate, features, cfg, ONE_PROCESS)
    assert cache is not None and report["used"]
    assert len({len(f["input_ids"]) for f in features[:8]}) > 1  # the batch is padded
    expected, expected_grads = loss_and_grads(the_task.loss, net, collate(features[:8]))
    got, grads = loss_and_grads(cache.loss, net, cache.collate(cache.features[:8]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert grads.keys() == expected_grads.keys() and not any(".layer.0." in n for n in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_a_loss_call_leaves_the_model_whole(tiny_bert, data):
    cfg, task, tokenizer, model, features = prepared(tiny_bert, data["classification"])
    collate = task.collate(tokenizer)
    cache = frozen_cache.plan(model, task, collate, features, cfg, ONE_PROCESS)[0]
    embeddings, layers = model.bert.embeddings, model.bert.encoder.layer
    batch = {k: v for k, v in collate(features[:8]).items() if k != "labels"}
    model.eval()
    before = model(**batch).logits.detach()
    cache.loss(model, cache.collate(cache.features[:8]))
    assert model.bert.embeddings is embeddings and model.bert.encoder.layer is layers and len(layers) == 2
    model.eval()
    torch.testing.assert_close(model(**batch).logits.detach(), before, atol=0, rtol=0)


def run_config(tiny_bert: str, train_file: str, out: Path, name: str, **method) -> dict:
    return {"name": name, "output_dir": str(out), "model": {"name": tiny_bert, "dropout": 0.0},
            "data": {"train": train_file, "max_length": 32, "test_size": 0},
            "method": {"name": "freeze", "freeze_layers": 1, **method}, "task": {"baselines": False},
            "train": {"max_steps": 30, "batch_size": 8, "lr": 1e-2, "log_every": 1, "seed": 3, "precision": "fp32"}}


def logged_losses(run) -> list[float]:
    log = (run.path / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [r["loss"] for r in map(json.loads, log) if "loss" in r]


def test_run_with_the_cache_trains_as_without_it(tiny_bert, data, tmp_path, capsys):
    cached = train(run_config(tiny_bert, data["classification"], tmp_path, "cached"))
    assert "frozen embeddings + 1 layers: computed once" in capsys.readouterr().out
    plain = train(run_config(tiny_bert, data["classification"], tmp_path, "plain", cache_frozen=False))
    report = cached.metrics["train"]["frozen_cache"]
    assert report["used"] and report["examples"] == 43 and report["storage"] == "float32" and "seconds" in report
    assert plain.metrics["train"]["frozen_cache"] == {"used": False, "reason": "method.cache_frozen is false"}
    losses = logged_losses(cached)
    assert sum(losses[-4:]) / 4 < losses[0]
    assert losses == pytest.approx(logged_losses(plain), abs=1e-4)
    assert cached.metrics["validation"]["accuracy"] == plain.metrics["validation"]["accuracy"]
    assert cached.metrics["validation"]["log_loss"] == pytest.approx(plain.metrics["validation"]["log_loss"], abs=1e-4)


def test_bf16_run_keeps_bf16_states(tiny_bert, data, tmp_path):
    cfg = run_config(tiny_bert, data["classification"], tmp_path, "bf16")
    cfg["train"] |= {"precision": "bf16", "max_steps": 2}
    run = train(cfg)
    assert run.metrics["train"]["frozen_cache"]["storage"] == "bfloat16"
    assert all(torch.isfinite(torch.tensor(logged_losses(run))))


def test_unsupported_architecture_trains_uncached(tiny_modernbert, data, tmp_path, capsys):
    cfg = run_config(tiny_modernbert, data["classification"], tmp_path, "modernbert")
    cfg["train"]["max_steps"] = 2
    run = train(cfg)
    report = run.metrics["train"]["frozen_cache"]
    assert not report["used"] and "does not reproduce" in report["reason"] and "final norm" in report["reason"]
    assert f"frozen layers not cached: {report['reason']}" in capsys.readouterr().out
    assert run.metrics["train"]["steps"] == 2


@pytest.mark.parametrize(("change", "reason"), [
    ({"method": {"name": "freeze", "freeze_layers": 0}}, "no frozen layers"),
    ({"train": {"precision": "fp32", "gradient_checkpointing": True}}, "gradient_checkpointing"),
    ({"processes": 2}, "2 processes"),
    ({"budget": 1}, "over the 0 GiB budget"),
])
def test_cases_the_cache_cannot_serve(change, reason, tiny_bert, data, monkeypatch):
    monkeypatch.setattr(frozen_cache, "BUDGET_BYTES", change.pop("budget", frozen_cache.BUDGET_BYTES))
    accelerator = SimpleNamespace(num_processes=change.pop("processes", 1), is_main_process=True)
    cfg, task, tokenizer, model, features = prepared(tiny_bert, data["classification"], **change)
    cache, report = frozen_cache.plan(model, task, task.collate(tokenizer), features, cfg, accelerator)
    assert cache is None and not report["used"] and reason in report["reason"]


def test_masking_collator_is_not_cached(tiny_bert, data):
    cfg, task, tokenizer, model, features = prepared(tiny_bert, data["mlm"], "mlm")
    cache, report = frozen_cache.plan(model, task, task.collate(tokenizer), features, cfg, ONE_PROCESS)
    assert cache is None and "changes the tokens" in report["reason"]


def test_other_methods_are_left_alone(tiny_bert, data):
    cfg, task, tokenizer, model, features = prepared(tiny_bert, data["classification"], method={"name": "full"})
    assert frozen_cache.plan(model, task, task.collate(tokenizer), features, cfg, ONE_PROCESS) == (None, None)
