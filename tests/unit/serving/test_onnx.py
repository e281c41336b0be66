"""ONNX export on tiny models: files, parity with PyTorch, int8, refusals, and predicting through the task code
the way `Predictor` does, from an exported folder moved away from its run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lmtune.api import Predictor
from lmtune.config import ModelConfig, TaskConfig
from lmtune.data.stream import input_frame
from lmtune.errors import UserError
from lmtune.models.load import load_tokenizer
from lmtune.serving.onnx_export import export_onnx
from lmtune.tasks import saved_task, task_class
from lmtune.trained.folder import model_dir
from lmtune.trained.onnx_model import OnnxModel, load_onnx_model

# The export module imports them only when used, so the skip can come after the imports.
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["the film good", "the food bad", "love", "not great, the service was awful and the food bad", "good good"]


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    """tiny_run exported with int8, then moved out of a run copy that is deleted: nothing may point back."""
    base = tmp_path_factory.mktemp("onnx")
    run = shutil.copytree(tiny_run, base / "run")
    folder = export_onnx(run, quantize=True)
    assert folder == run / "onnx"
    moved = shutil.move(folder, base / "elsewhere")
    shutil.rmtree(run)
    return Path(moved)


def onnx_predict(folder: Path, texts: list, variant: str = "fp32", precision: str = "fp32") -> list[dict]:
    """What Predictor does once wired: saved task + tokenizer from the folder, the ONNX model, task.predict."""
    folder = model_dir(folder)
    task = saved_task(folder)
    task.precision = precision
    tokenizer = load_tokenizer(str(folder), ModelConfig(name=str(folder)))
    return task.predict(load_onnx_model(folder, variant).eval(), tokenizer, input_frame(texts), batch_size=2)


def test_export_writes_a_self_contained_folder(exported):
    names = {p.name for p in exported.iterdir()}
    assert {"model.onnx", "model.int8.onnx", "onnx.json", "lmtune.json", "config.json", "tokenizer.json"} <= names
    record = json.loads((exported / "onnx.json").read_text())
    assert record["opset"] == 18 and record["quantized"] is True and record["task"] == "classification"
    assert record["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert record["outputs"] == ["logits"]
    assert record["parity"]["fp32"]["max_abs_diff"] <= record["tolerance"] == 1e-3
    assert record["parity"]["fp32"]["argmax_agreement"] == 1.0
    assert 0 <= record["parity"]["int8"]["argmax_agreement"] <= 1
    assert json.loads((exported / "config.json").read_text())["id2label"] == {"0": "bad", "1": "good"}
    assert saved_task(exported).labels == ["bad", "good"]


def test_graph_has_dynamic_batch_and_sequence(exported):
    session = OnnxModel(exported / "model.onnx").session
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        (name, ["batch", "sequence"]) for name in ("input_ids", "attention_mask", "token_type_ids")]
    [logits] = session.get_outputs()
    assert logits.name == "logits" and logits.shape == ["batch", 2]


def test_onnx_predictions_match_pytorch(exported, tiny_run):
    # fp32 on both sides: bf16 autocast (the default on CPUs with fast bf16) would move PyTorch's scores
    want = Predictor(tiny_run, precision="fp32").predict(TEXTS, batch_size=2)
    got = onnx_predict(exported, TEXTS)
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert [r["text"] for r in got] == TEXTS and [r["row"] for r in got] == [1, 2, 3, 4, 5]
    for g, w in zip(got, want, strict=True):
        assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-3)


def test_bf16_autocast_leaves_the_onnx_path_alone(exported):
    """Tasks wrap inference in torch.autocast (bf16 where it pays); the session computes in numpy regardless."""
    assert onnx_predict(exported, TEXTS, precision="bf16") == onnx_predict(exported, TEXTS)


def test_int8_model_is_smaller_and_predicts(exported):
    assert (exported / "model.int8.onnx").stat().st_size < (exported / "model.onnx").stat().st_size
    fp32, int8 = onnx_predict(exported, TEXTS), onnx_predict(exported, TEXTS, "int8")
    assert [r["text"] for r in int8] == TEXTS
    for r in int8:
        assert r["label"] in {"bad", "good"} and sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    # Quantisation moves the scores a little; they stay far nearer the fp32 ones than a random model's would.
    drift = max(abs(a["probabilities"]["good"] - b["probabilities"]["good"]) for a, b in zip(fp32, int8, strict=True))
    assert drift < 0.05


def test_load_onnx_model_on_other_folders(exported, tiny_run):
    assert load_onnx_model(tiny_run / "model") is None  # a PyTorch model folder: Predictor keeps load_trained
    fp32_only = shutil.copytree(exported, exported.parent / "fp32-only")
    (fp32_only / "model.int8.onnx").unlink()
    with pytest.raises(UserError, match="quantize"):
        load_onnx_model(fp32_only, "int8")
    with pytest.raises(UserError, match="unknown ONNX variant"):
        load_onnx_model(exported, "fp16")


def test_onnx_model_acts_like_the_torch_model(exported):
    model = load_onnx_model(exported)
    assert next(model.parameters()).device.type == "cpu"
    ids = torch.tensor([[2, 40, 3, 0]])
    out = model(input_ids=ids, attention_mask=(ids > 0).long(), token_type_ids=torch.zeros_like(ids))
    assert out.logits.dtype == torch.float32 and out.logits.shape == (1, 2)
    with pytest.raises(UserError, match="token_type_ids"):
        model(input_ids=ids, attention_mask=(ids > 0).long())


def test_lora_adapter_is_merged_into_the_graph(tiny_bert, tmp_path):
    """An adapter-only LoRA run (merge_lora false) loads as a PeftModel; the export merges it."""
    from lmtune.api import train

    rows = [(f"the film {'good' if i % 2 else 'bad'} {i}", "good" if i % 2 else "bad") for i in range(12)]
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    run = train({"name": "lora", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                 "method": {"name": "lora", "merge_lora": False}, "task": {"baselines": False},
                 "data": {"train": str(tmp_path / "train.csv"), "max_length": 32, "test_size": 0},
                 "train": {"max_steps": 1, "batch_size": 8, "seed": 1}}).path
    assert (run / "model" / "adapter_config.json").exists()
    # tiny_bert is a masked-LM checkpoint without a pooler, so each load of the base model draws a new random
    # pooler (the adapter does not hold it): the same seed before both loads makes them the same model.
    torch.manual_seed(0)
    folder = export_onnx(run)
    assert not list(folder.glob("adapter*"))
    torch.manual_seed(0)
    want = Predictor(run, precision="fp32").predict(TEXTS)
    assert_close(onnx_predict(folder, TEXTS), want)


def test_refuses_old_opsets_and_overwriting_the_source(tiny_run, tmp_path):
    with pytest.raises(UserError, match="opset 18 or later"):
        export_onnx(tiny_run, output=tmp_path / "out", opset=17)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="would replace the model"):
        export_onnx(tiny_run, output=tiny_run / "model")


@pytest.mark.parametrize("state", [
    {"task": "mlm", "max_length": 32, "mask_probability": 0.15},
    {"task": "sft", "labels": [], "system_prompt": None, "max_length": 64},
    {"task": "clm", "max_length": 64},
], ids=lambda s: s["task"])
def test_refuses_generation_and_masked_lm(state, tiny_run, tmp_path):
    folder = shutil.copytree(tiny_run / "model", tmp_path / "model")
    (folder / "lmtune.json").write_text(json.dumps({**state, "base_model": "x", "method": "full"}))
    with pytest.raises(UserError, match=f"covers classification, .*this is a {state['task']} model"):
        export_onnx(folder)
    assert not (tmp_path / "onnx").exists()


def save_untrained(task, tiny_bert: str, folder: Path) -> Path:
    """A model folder as a run would leave it, with a fresh (seeded) head: enough to compare two runtimes."""
    torch.manual_seed(0)
    task.build_model(tiny_bert, ModelConfig(name=tiny_bert)).save_pretrained(folder)
    load_tokenizer(tiny_bert, ModelConfig(name=tiny_bert)).save_pretrained(folder)
    (folder / "lmtune.json").write_text(json.dumps({**task.state(), "base_model": tiny_bert, "method": "full"}))
    return folder


OTHER_TASKS = {
    "regression": ({"targets": ["score"], "max_length": 32}, [{"text": t} for t in TEXTS]),
    "token-classification": ({"labels": ["O", "B-LOC", "I-LOC"], "max_length": 32}, [{"text": t} for t in TEXTS]),
    "question-answering": ({"max_length": 48, "doc_stride": 16},
                           [{"question": "what was good?", "context": "the film was good but the food bad " * 3},
                            {"question": "food?", "context": "love the food"}]),
}


@pytest.mark.parametrize("name", list(OTHER_TASKS))
def test_other_encoder_tasks_export_and_predict_alike(name, tiny_bert, tmp_path):
    kwargs, inputs = OTHER_TASKS[name]
    task = task_class(name)(TaskConfig(name=name), **kwargs)
    source = save_untrained(task, tiny_bert, tmp_path / "model")
    folder = export_onnx(source, output=tmp_path / "exported")
    record = json.loads((folder / "onnx.json").read_text())
    assert record["parity"]["fp32"]["max_abs_diff"] <= 1e-3
    if name == "question-answering":
        assert record["outputs"] == ["start_logits", "end_logits"]
    want = Predictor(source, precision="fp32").predict(inputs, batch_size=2)
    got = onnx_predict(folder, inputs)
    assert_close(got, want)


def assert_close(got, want, path: str = "") -> None:
    """Equal records up to float noise: every label, tag, span and text the same, numbers within 1e-3."""
    if isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-3), path
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    else:
        assert got == want, path
