"""What the language-model tasks share: corpus data for continued pre-training (mlm, clm), and the causal-LM
model, collator, loss and perplexity (clm, sft)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import pandas as pd
import torch
from transformers import AutoModelForCausalLM

from lmtune.config import Config, DataConfig, ModelConfig, TaskConfig
from lmtune.data.clean import as_given
from lmtune.data.lines import load_corpus, read_corpus
from lmtune.evaluation.inference import summed_loss
from lmtune.generation.generate import Generator, Settings
from lmtune.models.load import load_model
from lmtune.tasks.base import Task
from lmtune.tasks.lm_loss import causal_loss
from lmtune.training.packing import CausalCollator


class CorpusTask(Task):
    """Unlabelled text, one document a line (or a table's text column), split at random."""

    input_fields: ClassVar[tuple[str, ...]] = ("text",)
    metric = "perplexity"
    higher_is_better = False

    def __init__(self, cfg: TaskConfig | dict | None = None, max_length: int = 256):
        super().__init__(cfg)
        self.max_length = max_length

    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        self.max_length = cfg.data.max_length
        return load_corpus(cfg)

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        return read_corpus(data.train, data)


class CausalModelling(Task):
    """A causal LM trained on next-token labels (-100 = not scored), padded or packed rows alike."""

    peft_task_type: ClassVar[str] = "CAUSAL_LM"
    model_kind: ClassVar[str] = "decoder"
    pipeline_tag: ClassVar[str | None] = "text-generation"

    def collate(self, tokenizer):
        return CausalCollator(tokenizer.pad_token_id)

    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        return load_model(AutoModelForCausalLM, path, cfg)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        total, count = causal_loss(model, batch, self.virtual_tokens)
        return total / max(count, 1)

    def loss_units(self, batch: dict[str, torch.Tensor]) -> int:
        """The tokens the loss is a mean over (each label predicted from the position before it)."""
        return int((batch["labels"][:, 1:] != -100).sum())

    def perplexity(self, model, tokenizer, features: list[dict], batch_size: int) -> dict:
        """Mean loss per scored token and perplexity = exp(loss)."""
        total, count = summed_loss(model, features, self.collate(tokenizer), batch_size,
                                   lambda m, batch: causal_loss(m, batch, self.virtual_tokens), self.precision)
        loss = total / max(count, 1)
        return {"loss": round(loss, 6), "perplexity": round(math.exp(loss), 4), "tokens": count}

    def generate_for_rows(self, model, tokenizer, rows: pd.DataFrame, batch_size: int, max_new_tokens: int, *,
                          system: str | None = None, wrap: Callable[[str], str] | None = None,
                          raw: bool = False) -> list[dict]:
        """{"row", "text", "generated"} for each `text`: greedy, `wrap`ped into a prompt first when given, chat-
        rendered unless `raw`."""
        generator = Generator(model, tokenizer, self.precision, system)
        texts = rows["text"].tolist()
        prompts = [generator.prompt(wrap(t) if wrap else t, raw=raw) for t in texts]
        outputs = generator.generate(prompts, Settings(max_new_tokens=max_new_tokens), batch_size)
        return [{"row": int(row), "text": text, "generated": output}
                for row, text, output in zip(rows.index, as_given(rows), outputs, strict=True)]
