"""ONNX export of trained encoder models.

An exported folder runs on onnxruntime alone (no autograd; optionally int8 weights, smaller and faster on CPU)
and is still an lmtune model folder: the tokenizer, config.json and lmtune.json sit beside model.onnx, and
`Predictor` loads it through `lmtune.trained.onnx_model`.

    export_onnx("runs/reviews", quantize=True)   # runs/reviews/onnx/{model.onnx, model.int8.onnx, onnx.json, ...}
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from lmtune.config import ModelConfig
from lmtune.errors import UserError
from lmtune.io import atomic_dir, write_json
from lmtune.methods import plain_weights
from lmtune.models.load import load_tokenizer, load_trained
from lmtune.tasks import TASKS, saved_task
from lmtune.trained.folder import model_dir
from lmtune.trained.onnx_model import FILES, OnnxModel, require

INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # _Heads.forward's order: graph inputs are named by it
# The torch.export-based exporter writes opset 18+ itself; below that it falls back to onnx's C API version
# converter, whose graphs onnxruntime rejects (a Split with opset-18 attributes, in QA heads for one).
MIN_OPSET = 18
TOLERANCE = 1e-3  # max |logit difference| accepted between PyTorch and the fp32 ONNX graph
ONE_FILE_LIMIT = 1_500_000_000  # bytes of weights: protobuf caps one .onnx file at 2 GB, larger go to model.onnx.data

# Parity probe: lengths from a couple of tokens to a few dozen, so the padded batch exercises the mask.
PROBE = [
    "good",
    "the film was bad",
    "not great, not awful: the service was slow but the food was good",
    "i love this place and i would go back tomorrow",
    "hate it",
    "a long, rambling review that goes on and on about the parking, the music, the lighting, the staff and "
    "finally the food, which was fine",
    "ok",
    "the best film of the year, without doubt",
]


def export_onnx(model_or_run: str | Path, output: str | Path | None = None, quantize: bool = False,
                opset: int = MIN_OPSET) -> Path:
    """Export a trained run (or model folder) to `<run>/onnx/` (or `output`); returns the folder.

    The fp32 graph must match PyTorch within TOLERANCE on a padded probe batch, or nothing is written. With
    `quantize`, model.int8.onnx holds int8 weights; its drift is recorded (argmax agreement), not enforced.
    """
    source = model_dir(model_or_run)
    task = saved_task(source)
    outputs = _outputs(task)
    if opset < MIN_OPSET:
        raise UserError(f"ONNX export writes opset {MIN_OPSET} or later (asked for {opset}): the exporter's "
                        "conversion to older opsets produces graphs onnxruntime cannot load")
    folder = Path(output) if output else _default_output(source)
    if folder.resolve() == source.resolve():
        raise UserError(f"the ONNX export would replace the model it is made from ({source}); choose another --output")
    require("onnxruntime", "onnx", "onnxscript")
    tokenizer = load_tokenizer(str(source), ModelConfig(name=str(source)))
    model = plain_weights(load_trained(source, task)).float().eval()
    probe = _probe(task, tokenizer)
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > ONE_FILE_LIMIT
    with atomic_dir(folder) as tmp:
        _export(model, probe, outputs, tmp / FILES["fp32"], opset, big)
        expected = _torch_outputs(model, probe, outputs)
        fp32 = _compare(expected, OnnxModel(tmp / FILES["fp32"]), probe)
        if fp32["max_abs_diff"] > TOLERANCE:
            raise UserError(f"the ONNX graph of {source} differs from the PyTorch model by up to "
                            f"{fp32['max_abs_diff']:.2e} in its outputs (tolerance {TOLERANCE}); nothing was "
                            f"written. Try another opset (this was {opset})")
        record = {"opset": opset, "task": task.name, "inputs": list(probe), "outputs": list(outputs),
                  "quantized": quantize, "source": str(source.resolve()), "tolerance": TOLERANCE,
                  "parity": {"fp32": fp32}}
        if quantize:
            _quantize(tmp / FILES["fp32"], tmp / FILES["int8"], big)
            record["parity"]["int8"] = _compare(expected, OnnxModel(tmp / FILES["int8"]), probe)
        tokenizer.save_pretrained(tmp)
        model.config.save_pretrained(tmp)  # the labels (id2label) travel with the graph
        shutil.copy2(source / "lmtune.json", tmp / "lmtune.json")
        write_json(tmp / "onnx.json", record)
    return folder


def _outputs(task) -> tuple[str, ...]:
    """What the task reads from the model output (Task.onnx_outputs). Generation and fill-mask have none: they need
    a decoding loop or a pipeline around the model, which one ONNX graph of logits does not give them."""
    if task.onnx_outputs is None:
        covered = ", ".join(name for name, cls in TASKS.items() if cls.onnx_outputs is not None)
        raise UserError(f"ONNX export covers {covered} models; this is a {task.name} model, whose "
                        "predictions need a generation loop or a fill-mask pipeline around the network, not one "
                        "forward pass: serve it with PyTorch (lmtune serve/predict on the run)")
    return task.onnx_outputs


def _default_output(source: Path) -> Path:
    """runs/x/model → runs/x/onnx; a standalone model folder m → m-onnx beside it."""
    return source.parent / "onnx" if source.name == "model" else source.with_name(f"{source.name}-onnx")


def _probe(task, tokenizer) -> dict[str, torch.Tensor]:
    """A padded batch of the probe texts, as pairs where the model reads pairs (token_type_ids of 1 included)."""
    pairs = PROBE[::-1] if task.reads_pairs else None
    enc = tokenizer(PROBE, pairs, padding=True, truncation=True, max_length=task.max_length, return_tensors="pt")
    return {k: enc[k].long() for k in INPUTS if k in enc}


class _Heads(torch.nn.Module):
    """The model with a flat tuple of the task's outputs: the graph's outputs, named and in a fixed order."""

    def __init__(self, model: torch.nn.Module, outputs: tuple[str, ...]):
        super().__init__()
        self.model, self.outputs = model, outputs

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> tuple[torch.Tensor, ...]:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        result = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return tuple(getattr(result, name) for name in self.outputs)


def _export(model: torch.nn.Module, probe: dict[str, torch.Tensor], outputs: tuple[str, ...], path: Path,
            opset: int, big: bool) -> None:
    # The torch.export-based exporter (dynamo=True, needs onnxscript): the default since torch 2.9. The
    # TorchScript one is deprecated there, and its tracer bakes Python-side shape checks of the attention
    # mask code into the graph as constants (TracerWarnings), which breaks other sequence lengths.
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")  # shared dims, named once
        torch.onnx.export(_Heads(model, outputs).eval(), (), str(path), kwargs=probe, input_names=list(probe),
                          output_names=list(outputs), opset_version=opset, dynamo=True, external_data=big,
                          dynamic_shapes={name: {0: batch, 1: sequence} for name in probe}, verbose=False)


def _torch_outputs(model: torch.nn.Module, probe: dict[str, torch.Tensor],
                   outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        result = model(**probe)
    return {name: getattr(result, name).float().numpy() for name in outputs}


def _compare(expected: dict[str, np.ndarray], model: OnnxModel, probe: dict[str, torch.Tensor]) -> dict:
    """Largest |difference| over all outputs, and how often the top class (per row, or per real token for
    per-token outputs) is the same."""
    got = vars(model(**probe))
    mask = probe["attention_mask"].bool().numpy()
    diff, same, total = 0.0, 0, 0
    for name, want in expected.items():
        have = got[name].numpy()
        diff = max(diff, float(np.abs(have - want).max()))
        agree = have.argmax(-1) == want.argmax(-1)
        if want.ndim == 3:  # (batch, tokens, labels): padding positions are never read
            agree = agree[mask]
        same, total = same + int(agree.sum()), total + agree.size
    return {"max_abs_diff": float(f"{diff:.3g}"), "argmax_agreement": round(same / total, 4), "probe_rows": len(mask)}


def _quantize(source: Path, target: Path, big: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Dynamic quantisation: int8 weights stored, activations quantised per batch at run time; no calibration data.
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, use_external_data_format=big)
