"""End-to-end training through `lmtune.recipe.train` on the tiny random BERT: run folder, reproducibility,
gradient accumulation, early stopping and best-model restore, methods, multi-label, pairs, class weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lmtune.api import Run, train
from lmtune.config import MethodConfig
from lmtune.errors import ConfigError
from lmtune.methods import apply_method, count_parameters

GOOD = ["good", "great", "love"]
BAD = ["bad", "awful", "hate"]
NOUNS = ["film", "food", "service"]


# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine they lose a lot.
pytestmark = pytest.mark.usefixtures("one_thread")


def write_csv(path: Path, rows: list[tuple], header: str = "text,label") -> str:
    path.write_text(header + "\n" + "".join(",".join(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def sentiment_rows(n: int = 60, positive_share: float = 0.5) -> list[tuple[str, str]]:
    rows = []
    n_pos = round(n * positive_share)
    for i in range(n):
        positive = i < n_pos
        word = (GOOD if positive else BAD)[i % 3]
        rows.append((f"the {NOUNS[i % 3]} {word} {i}", "good" if positive else "bad"))
    return rows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def sentiment_csv(data_dir) -> str:
    return write_csv(data_dir / "sentiment.csv", sentiment_rows())


def config(tiny_bert: str, train_file: str, out: Path, **sections) -> dict:
    """A small, fast run config; `sections` are merged into the defaults section by section."""
    cfg: dict = {
        "name": "t",
        "output_dir": str(out),
        "model": {"name": tiny_bert},
        "data": {"train": train_file, "max_length": 32},
        "train": {"max_steps": 4, "batch_size": 8, "eval_batch_size": 32, "log_every": 1, "seed": 1},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    return cfg


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def losses(run: Run) -> list[float]:
    return [r["loss"] for r in read_jsonl(run.path / "train_log.jsonl") if "loss" in r]


def evals(run: Run) -> list[dict]:
    return [r for r in read_jsonl(run.path / "train_log.jsonl") if "eval" in r]


@pytest.fixture(scope="module")
def base_run(tiny_bert, sentiment_csv, tmp_path_factory) -> Run:
    return train(config(tiny_bert, sentiment_csv, tmp_path_factory.mktemp("runs")))


# -- the run folder ----------------------------------------------------------------------------------


def test_run_folder_layout(base_run):
    path = base_run.path
    assert path.name == "t"
    for name in ("config.yaml", "metrics.json", "train_log.jsonl", "predictions.jsonl"):
        assert (path / name).is_file(), name
    model = path / "model"
    for name in ("model.safetensors", "lmtune.json", "config.json", "tokenizer_config.json"):
        assert (model / name).is_file(), name
    assert (model / "tokenizer.json").is_file() or (model / "vocab.txt").is_file()
    assert not (path / "checkpoints").exists()  # nothing left to resume: the optimizer states go

    config_json = json.loads((model / "config.json").read_text())
    assert sorted(config_json["id2label"].values()) == ["bad", "good"]
    assert set(config_json["label2id"]) == {"bad", "good"}
    state = json.loads((model / "lmtune.json").read_text())
    assert state["labels"] == ["bad", "good"]
    assert state["multi_label"] is False

    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(base_run.metrics))
    assert metrics["train"]["steps"] == 4
    assert metrics["data"]["rows"] == {"train": 48, "validation": 6, "test": 6}
    for split in ("validation", "test"):
        assert 0 <= metrics[split]["accuracy"] <= 1
        assert metrics[split]["log_loss"] > 0

    logged = read_jsonl(path / "train_log.jsonl")
    assert [r["step"] for r in logged if "loss" in r] == [1, 2, 3, 4]
    predictions = read_jsonl(path / "predictions.jsonl")
    assert len(predictions) == 6  # the test split
    for p in predictions:
        assert p["label"] in {"bad", "good"} and p["gold"] in {"bad", "good"}
        assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_a_finished_run_keeps_its_checkpoints_only_when_asked(tiny_bert, sentiment_csv, tmp_path):
    kept = train(config(tiny_bert, sentiment_csv, tmp_path, train={"keep_final_checkpoint": True, "save_every": 2}))
    assert [p.name for p in (kept.path / "checkpoints").glob("step-*")] == ["step-0000004"]  # keep_checkpoints 1
    assert (kept.path / "model" / "model.safetensors").is_file()


def test_evaluation_time_is_kept_out_of_training_time(tiny_bert, sentiment_csv, tmp_path):
    run = train(config(tiny_bert, sentiment_csv, tmp_path, train={"eval_every": 1}))
    records = evals(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    clocks = [r["train_seconds"] for r in records]
    assert clocks == sorted(clocks) and clocks[0] >= 0
    total = run.metrics["train"]
    assert total["eval_seconds"] >= sum(r["eval_seconds"] for r in records) - 0.01  # it also counts saves
    # The whole clock holds the training clock at the last evaluation plus every evaluation (and the saves after).
    assert clocks[-1] + total["eval_seconds"] <= total["seconds"] + 0.01


def test_saved_config_reloads_to_the_run_config(base_run):
    from lmtune.config import load_config

    assert load_config(base_run.path / "config.yaml") == base_run.config


def test_transformers_pipeline_loads_the_model(base_run):
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(base_run.model_dir), device="cpu")
    out = classifier("the film was good")
    assert out[0]["label"] in {"bad", "good"}
    assert 0 <= out[0]["score"] <= 1


def test_run_predict(base_run):
    out = base_run.predict(["good good", "bad bad"])
    assert len(out) == 2
    assert [o["text"] for o in out] == ["good good", "bad bad"]
    for o in out:
        assert o["label"] in {"bad", "good"}
        assert set(o["probabilities"]) == {"bad", "good"}
        assert sum(o["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert o["score"] == o["probabilities"][o["label"]] == max(o["probabilities"].values())


def test_second_run_with_same_name_never_overwrites(base_run, tiny_bert, sentiment_csv):
    before = (base_run.path / "metrics.json").read_bytes()
    out = base_run.path.parent
    second = train(config(tiny_bert, sentiment_csv, out, train={"max_steps": 1}))
    third = train(config(tiny_bert, sentiment_csv, out, train={"max_steps": 1}))
    assert second.path == out / "t-2"
    assert third.path == out / "t-3"
    assert second.config.name == "t-2"
    assert (second.path / "metrics.json").is_file()
    assert (base_run.path / "metrics.json").read_bytes() == before
    assert json.loads((base_run.path / "metrics.json").read_text())["train"]["steps"] == 4


# -- reproducibility ---------------------------------------------------------------------------------


def test_same_seed_same_results_other_seed_differs(tiny_bert, sentiment_csv, tmp_path):
    a = train(config(tiny_bert, sentiment_csv, tmp_path, name="a"))
    b = train(config(tiny_bert, sentiment_csv, tmp_path, name="b"))
    c = train(config(tiny_bert, sentiment_csv, tmp_path, name="c", train={"seed": 2}))
    for split in ("validation", "test"):
        assert a.metrics[split]["accuracy"] == b.metrics[split]["accuracy"]
        assert a.metrics[split]["log_loss"] == b.metrics[split]["log_loss"]
    assert read_jsonl(a.path / "predictions.jsonl") == read_jsonl(b.path / "predictions.jsonl")
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)


# -- gradient accumulation ---------------------------------------------------------------------------


def test_grad_accum_halves_optimiser_steps(tiny_bert, sentiment_csv, tmp_path):
    one = train(config(tiny_bert, sentiment_csv, tmp_path, name="one",
                       train={"max_steps": None, "epochs": 1, "grad_accum": 1}))
    two = train(config(tiny_bert, sentiment_csv, tmp_path, name="two",
                       train={"max_steps": None, "epochs": 1, "grad_accum": 2}))
    batches = math.ceil(one.metrics["data"]["rows"]["train"] / 8)
    assert one.metrics["train"]["steps"] == batches == 6
    assert two.metrics["train"]["steps"] == batches // 2 == 3


# -- early stopping and best-model restore -----------------------------------------------------------


def test_early_stopping_when_the_metric_cannot_improve(tiny_bert, sentiment_csv, tmp_path):
    run = train(config(tiny_bert, sentiment_csv, tmp_path,
                       train={"max_steps": 20, "lr": 1e-12, "warmup": 0, "eval_every": 1,
                              "early_stopping_patience": 1}))
    result = run.metrics["train"]
    assert result["stopped_early"] is True
    assert result["steps"] == 2  # evaluated at steps 1 and 2, no improvement at 2
    assert result["steps"] < 20
    assert [r["step"] for r in evals(run)] == [1, 2]


def test_no_early_stop_without_patience(tiny_bert, sentiment_csv, tmp_path):
    run = train(config(tiny_bert, sentiment_csv, tmp_path,
                       train={"max_steps": 3, "lr": 1e-12, "warmup": 0, "eval_every": 1}))
    assert run.metrics["train"]["stopped_early"] is False
    assert run.metrics["train"]["steps"] == 3


def test_best_model_is_restored(tiny_bert, sentiment_csv, tmp_path):
    run = train(config(tiny_bert, sentiment_csv, tmp_path,
                       train={"max_steps": 8, "lr": 5e-3, "warmup": 0, "eval_every": 1, "scheduler": "constant"}))
    history = evals(run)
    assert [r["step"] for r in history] == list(range(1, 9))
    accuracies = [r["eval"]["accuracy"] for r in history]
    best = run.metrics["train"]["best"]
    final = run.metrics["validation"]
    assert final["accuracy"] == max(accuracies) == best["eval"]["accuracy"]
    # the first evaluation reaching the best wins, and the final weights are that evaluation's weights
    assert best["step"] == history[accuracies.index(max(accuracies))]["step"]
    assert final["log_loss"] == pytest.approx(best["eval"]["log_loss"], abs=1e-6)
    # the check above means something only when the last evaluation's weights were not the best ones
    assert best["step"] < history[-1]["step"]
    assert history[-1]["eval"]["log_loss"] != pytest.approx(best["eval"]["log_loss"], abs=1e-6)


# -- methods -----------------------------------------------------------------------------------------


@pytest.fixture
def seq_model(tiny_bert):
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)


def trainable_names(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_full_trains_everything(seq_model):
    seq_model.requires_grad_(False)
    model = apply_method(seq_model, MethodConfig(name="full"), "SEQ_CLS")
    counts = count_parameters(model)
    assert counts["trainable"] == counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["trainable_pct"] == 100


def test_head_trains_only_the_classifier(seq_model):
    model = apply_method(seq_model, MethodConfig(name="head"), "SEQ_CLS")
    counts = count_parameters(model)
    assert trainable_names(model) == {"classifier.weight", "classifier.bias"}
    assert counts["trainable"] == model.classifier.weight.numel() + model.classifier.bias.numel() == 32 * 2 + 2
    assert counts["trainable"] < counts["total"]


def test_freeze_one_layer_freezes_embeddings_and_layer_0_only(seq_model):
    model = apply_method(seq_model, MethodConfig(name="freeze", freeze_layers=1), "SEQ_CLS")
    for name, param in model.named_parameters():
        frozen = name.startswith(("bert.embeddings.", "bert.encoder.layer.0."))
        assert param.requires_grad is not frozen, name
    names = trainable_names(model)
    assert any(n.startswith("bert.encoder.layer.1.") for n in names)
    assert {"classifier.weight", "classifier.bias"} <= names


def test_freeze_zero_layers_freezes_only_embeddings(seq_model):
    model = apply_method(seq_model, MethodConfig(name="freeze", freeze_layers=0), "SEQ_CLS")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("bert.embeddings.") for n in frozen)


def test_freeze_more_layers_than_the_model_has(seq_model, tiny_bert, sentiment_csv, tmp_path):
    with pytest.raises(ConfigError, match="freeze_layers=3"):
        apply_method(seq_model, MethodConfig(name="freeze", freeze_layers=3), "SEQ_CLS")
    with pytest.raises(ConfigError, match="2 layers"):
        train(config(tiny_bert, sentiment_csv, tmp_path, method={"name": "freeze", "freeze_layers": 5}))


def test_head_run_reports_trainable_params(tiny_bert, sentiment_csv, tmp_path):
    run = train(config(tiny_bert, sentiment_csv, tmp_path, method={"name": "head"}, train={"max_steps": 2}))
    params = run.metrics["params"]
    assert params["trainable"] == 32 * 2 + 2
    assert params["trainable"] < params["total"]


def test_lora_run_saves_adapter_and_merged_model(tiny_bert, sentiment_csv, tmp_path):
    full = train(config(tiny_bert, sentiment_csv, tmp_path, name="full", train={"max_steps": 1}))
    run = train(config(tiny_bert, sentiment_csv, tmp_path, name="lora", method={"name": "lora", "lora_r": 2},
                       train={"max_steps": 3, "lr": 1e-3}))
    params = run.metrics["params"]
    assert params["trainable"] < params["total"] / 4
    assert params["trainable"] < full.metrics["params"]["trainable"] / 4

    model_dir = run.model_dir
    adapter = json.loads((model_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 2
    assert adapter["peft_type"] == "LORA"
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert not [k for k in keys if "lora_" in k or k.startswith("base_model.") or "modules_to_save" in k]
    with safe_open(str(full.model_dir / "model.safetensors"), "pt") as f:
        assert keys == set(f.keys())  # same layout as a plain fine-tuned model

    # plain transformers (no peft) gives the same probabilities as lmtune's predictor
    plain = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = ["good good", "bad bad"]
    with torch.no_grad():
        logits = plain(**tokenizer(texts, return_tensors="pt", padding=True)).logits
    probs = torch.softmax(logits.double(), dim=-1).numpy()
    ours = run.predict(texts)
    labels = [plain.config.id2label[i] for i in range(2)]
    expected = np.array([[o["probabilities"][c] for c in labels] for o in ours])
    np.testing.assert_allclose(probs, expected, atol=5e-3)


# -- task variants -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_label_csv(data_dir) -> str:
    rows = []
    for i in range(60):
        labels = ["a|b", "a", "b"][i % 3]
        word = {"a|b": "good bad", "a": "good", "b": "bad"}[labels]
        rows.append((f"the {NOUNS[i % 3]} {word} {i}", labels))
    return write_csv(data_dir / "multi.csv", rows)


def test_multi_label_with_tuned_threshold(tiny_bert, multi_label_csv, tmp_path):
    run = train(config(tiny_bert, multi_label_csv, tmp_path, data={"label_separator": "|"},
                       task={"threshold": "tune"}, train={"max_steps": 3}))
    assert set(run.metrics["data"]["labels"]) == {"a", "b"}
    for split in ("validation", "test"):
        assert 0 <= run.metrics[split]["subset_accuracy"] <= 1
    predictions = read_jsonl(run.path / "predictions.jsonl")
    assert predictions
    for p in predictions:
        assert isinstance(p["labels"], list)
        assert set(p["labels"]) <= {"a", "b"}
        assert isinstance(p["gold"], list) and set(p["gold"]) <= {"a", "b"}
        assert "label" not in p
    state = json.loads((run.model_dir / "lmtune.json").read_text())
    assert state["multi_label"] is True
    assert isinstance(state["threshold"], float) and 0 < state["threshold"] < 1
    out = run.predict(["good bad"])
    assert isinstance(out[0]["labels"], list)
    assert out[0]["labels"] == [c for c, s in out[0]["probabilities"].items() if s >= state["threshold"]]


def test_multi_label_fixed_threshold_is_stored(tiny_bert, multi_label_csv, tmp_path):
    run = train(config(tiny_bert, multi_label_csv, tmp_path, data={"label_separator": "|"},
                       task={"threshold": 0.3}, train={"max_steps": 1}))
    assert json.loads((run.model_dir / "lmtune.json").read_text())["threshold"] == 0.3


def test_sentence_pairs(tiny_bert, data_dir, tmp_path):
    rows = []
    for i in range(60):
        same = i % 2 == 0
        first = GOOD[i % 3]
        second = first if same else BAD[i % 3]
        rows.append((f"the film {first} {i}", f"the food {second}", "same" if same else "different"))
    path = write_csv(data_dir / "pairs.csv", rows, header="premise,hypothesis,label")
    run = train(config(tiny_bert, path, tmp_path, data={"text_column": "premise", "text_pair_column": "hypothesis"},
                       train={"max_steps": 2}))
    predictions = read_jsonl(run.path / "predictions.jsonl")
    assert predictions
    for p in predictions:
        premise, hypothesis, gold = rows[p["row"] - 1]  # rows are numbered from 1, the header not counted
        assert (p["text"], p["text_pair"], p["gold"]) == (premise, hypothesis, gold)
        assert p["label"] in {"same", "different"}
    assert json.loads((run.model_dir / "lmtune.json").read_text())["pair"] is True
    out = run.predict([{"text": "the film good", "text_pair": "the food good"}])
    assert out[0]["text_pair"] == "the food good"
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_balanced_class_weights(tiny_bert, data_dir, tmp_path):
    path = write_csv(data_dir / "imbalanced.csv", sentiment_rows(60, positive_share=0.75))
    plain = train(config(tiny_bert, path, tmp_path, name="plain"))
    weighted = train(config(tiny_bert, path, tmp_path, name="weighted", task={"class_weights": "balanced"}))
    assert weighted.metrics["train"]["steps"] == 4
    assert weighted.metrics["data"]["labels"]["good"] > weighted.metrics["data"]["labels"]["bad"]
    assert 0 <= weighted.metrics["test"]["accuracy"] <= 1
    assert losses(weighted) != losses(plain)  # same seed and data: only the weights differ


def test_runs_with_different_precisions_in_one_process(tiny_bert, sentiment_csv, tmp_path):
    """Accelerate's state is process-wide: a second run asking for another precision must still work."""
    first = train(config(tiny_bert, sentiment_csv, tmp_path, name="bf16", train={"max_steps": 1, "precision": "bf16"}))
    second = train(config(tiny_bert, sentiment_csv, tmp_path, name="fp32", train={"max_steps": 1, "precision": "fp32"}))
    assert first.metrics["hardware"]["precision"] == "bf16"
    assert second.metrics["hardware"]["precision"] == "no"
    assert second.metrics["train"]["steps"] == 1


def test_configured_selection_metric_is_used_and_unknown_one_is_named(tiny_bert, tmp_path):
    data = tmp_path / "m.csv"
    data.write_text("text,label\n" + "\n".join(f"{'good' if i % 2 else 'bad'} film {i},{i % 2}" for i in range(40)))
    base = {"output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert}, "data": {"train": str(data)}}
    run = train({**base, "name": "m", "train": {"max_steps": 6, "eval_every": 1, "lr": 1e-3, "metric": "log_loss"}})
    evals = [json.loads(line)["eval"] for line in (run.path / "train_log.jsonl").read_text().splitlines()
             if "eval" in json.loads(line)]
    assert len(evals) == 6
    assert run.metrics["train"]["best"]["eval"]["log_loss"] == min(e["log_loss"] for e in evals)  # lower is better
    with pytest.raises(ConfigError, match="log_losss.*accuracy"):
        train({**base, "name": "bad", "train": {"max_steps": 2, "metric": "log_losss"}})
