"""An exported model folder run by ONNX Runtime behind the interface the tasks use, so that their predict and
evaluate code (and `lmtune predict/serve` through `Predictor`) need no ONNX branch of their own."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from lmtune.errors import UserError

FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
INSTALL = "pip install 'lmtune[onnx]'"


class OnnxModel(torch.nn.Module):
    """An ONNX Runtime session behind the interface the tasks use: `model(**inputs)` returns an object with
    the task's output tensors (`.logits`, or `.start_logits`/`.end_logits`), on the CPU.

    The session computes in numpy, so the tasks' torch.autocast and inference_mode have nothing to act on.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        ort = require("onnxruntime")[0]
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the thread budget lmtune gave torch (train.threads)
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # The tasks find their device from the first parameter: an empty one says "cpu" and holds nothing.
        self.anchor = torch.nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, **inputs: torch.Tensor) -> SimpleNamespace:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise UserError(f"{self.path} needs the inputs {', '.join(missing)}, which the tokenizer did not give")
        feed = {name: inputs[name].cpu().numpy().astype(np.int64) for name in self.input_names}
        values = self.session.run(self.output_names, feed)
        return SimpleNamespace(**{n: torch.from_numpy(v) for n, v in zip(self.output_names, values, strict=True)})


def load_onnx_model(model_dir: str | Path, variant: str = "fp32") -> OnnxModel | None:
    """The ONNX model of an exported folder (`variant` fp32 or int8), or None when the folder holds no ONNX
    export (a PyTorch model folder)."""
    folder = Path(model_dir)
    if not (folder / FILES["fp32"]).exists():
        return None
    if variant not in FILES:
        raise UserError(f"unknown ONNX variant {variant!r}; choose one of: {', '.join(FILES)}")
    path = folder / FILES[variant]
    if not path.exists():
        raise UserError(f"{folder} has no {FILES[variant]}: export it with quantize=True (lmtune export --quantize)")
    return OnnxModel(path)


def require(*modules: str) -> list:
    try:
        return [__import__(m) for m in modules]
    except ImportError as e:
        raise UserError(f"ONNX export and ONNX models need {', '.join(modules)} ({e.name} is missing): "
                        f"{INSTALL}") from None
