"""A trained lmtune model loaded for inference: PyTorch weights, or ONNX Runtime for an exported folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmtune.config import DataConfig, ModelConfig
from lmtune.data.stream import input_frame
from lmtune.data.token_cache import cache_dir, cached_encode
from lmtune.methods import model_virtual_tokens
from lmtune.models.load import load_tokenizer, load_trained
from lmtune.tasks import saved_task
from lmtune.trained.folder import model_dir
from lmtune.trained.onnx_model import load_onnx_model


class Predictor:
    """A trained lmtune model loaded for inference (from a run folder or its model/ folder)."""

    def __init__(self, model_or_run: str | Path, precision: str = "auto", onnx_variant: str = "fp32"):
        self.model_dir = model_dir(model_or_run)
        self.task = saved_task(self.model_dir)
        self.task.precision = precision
        self.tokenizer = load_tokenizer(str(self.model_dir), ModelConfig(name=str(self.model_dir)))
        onnx = load_onnx_model(self.model_dir, onnx_variant)  # an exported folder (`lmtune export`) runs on ONNX
        self.model = (onnx if onnx is not None else load_trained(self.model_dir, self.task)).eval()
        self.task.virtual_tokens = model_virtual_tokens(self.model)

    def predict(self, inputs: list[str] | list[dict] | pd.DataFrame, batch_size: int = 64) -> list[dict]:
        rows = inputs if isinstance(inputs, pd.DataFrame) else input_frame(inputs)
        return self.task.predict(self.model, self.tokenizer, rows, batch_size)

    def evaluate(self, data: DataConfig, batch_size: int = 128) -> tuple[dict, list[dict]]:
        rows = self.task.read_eval(data)
        features = cached_encode(self.task, rows, self.tokenizer, data, cache_dir(data)).features
        return self.task.evaluate(self.model, self.tokenizer, rows, features, batch_size)
