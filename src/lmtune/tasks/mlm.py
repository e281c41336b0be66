"""Masked-LM continued pre-training on unlabelled domain text (BERT's objective), scored by perplexity.

The saved model/ folder is an AutoModelForMaskedLM with its tokenizer, so any other task can start from it
with `--model runs/<name>/model` (the encoder weights load; the new task head starts fresh).
"""

from __future__ import annotations

import math
from typing import ClassVar

import pandas as pd
import torch
from pydantic import Field
from transformers import (
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    pipeline,
)

from lmtune.config import DataConfig, ModelConfig
from lmtune.data.clean import as_given
from lmtune.errors import ConfigError
from lmtune.evaluation.inference import summed_loss
from lmtune.models.load import load_model
from lmtune.tasks.base import TaskSettings
from lmtune.tasks.language_model import CorpusTask
from lmtune.tasks.lm_loss import masked_loss

EVAL_SEED = 1234  # one fixed masking for every evaluation, so perplexities before/after training compare
TOP_K = 5


class MaskedLM(CorpusTask):
    name: ClassVar[str] = "mlm"
    # PEFT has no masked-LM type; feature extraction passes every input through and adds no head of its own.
    peft_task_type: ClassVar[str] = "FEATURE_EXTRACTION"
    purpose: ClassVar[str] = "Fills in masked words; mainly a starting point for further fine-tuning"
    pipeline_tag: ClassVar[str | None] = "fill-mask"

    class Settings(TaskSettings):
        mask_probability: float = Field(0.15, gt=0, lt=1, description="Share of tokens masked (of those: 80% "
                                        "[MASK], 10% a random token, 10% unchanged).")

    # -- data ---------------------------------------------------------------------------------------
    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        if None in (tokenizer.mask_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id):
            raise ConfigError("task mlm needs an encoder whose tokenizer has mask, CLS and SEP tokens (BERT-style); "
                              f"{tokenizer.name_or_path} lacks one")
        # verbose=False: whole lines are meant to exceed the model's length here; blocks cut them below.
        docs = tokenizer(rows["text"].tolist(), add_special_tokens=False, verbose=False)["input_ids"]
        return group_blocks(docs, tokenizer, cfg.max_length)

    def collate(self, tokenizer, seed: int | None = None):
        # 80% of the chosen tokens become the mask token, 10% a random token, 10% stay as they are
        # (the collator's defaults, BERT's rule); special and padding positions are never chosen.
        return DataCollatorForLanguageModeling(tokenizer, mlm_probability=self.cfg.mask_probability, seed=seed)

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        return load_model(AutoModelForMaskedLM, path, cfg)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        total, count = masked_loss(model, batch)
        return total / max(count, 1)  # a batch with nothing masked (tiny texts) gives 0, never NaN

    # -- evaluation and prediction ------------------------------------------------------------------
    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        """Mean loss over masked tokens and perplexity = exp(loss). No per-row records: blocks span lines."""
        # Each block is masked on its own by a collator seeded afresh, so every evaluation (before training,
        # each epoch, `lmtune evaluate` with any batch size) scores the very same masked tokens, and the
        # training run's random state is left untouched.
        masker = self.collate(tokenizer, seed=EVAL_SEED)
        masked = [{k: v[0].tolist() for k, v in masker([f]).items()} for f in features]
        pad = DataCollatorForTokenClassification(tokenizer)  # pads labels with -100: padding is never scored
        total, count = summed_loss(model, masked, pad, batch_size, masked_loss, self.precision)
        loss = total / max(count, 1)
        return {"loss": round(loss, 6), "perplexity": round(math.exp(loss), 4), "masked_tokens": count,
                "blocks": len(features)}, []

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """Fill-mask: the top tokens for each mask token in a text (none for texts without one)."""
        fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, device=next(model.parameters()).device,
                        top_k=TOP_K)
        mask = tokenizer.mask_token
        texts = [t for t in rows["text"] if mask in t]
        results = fill(texts, batch_size=batch_size,
                       tokenizer_kwargs={"truncation": True, "max_length": self.max_length}) if texts else []
        found = iter([results] if len(texts) == 1 else results)  # the pipeline unwraps a one-text list
        out = []
        for (row, text), given in zip(rows["text"].items(), as_given(rows), strict=True):
            fills = _per_mask(next(found)) if mask in text else []
            out.append({"row": int(row), "text": given,
                        "masks": [[{"token": c["token_str"], "score": round(float(c["score"]), 6)} for c in m]
                                  for m in fills]})
        return out

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "max_length": self.max_length, "mask_probability": self.cfg.mask_probability}

    @classmethod
    def from_state(cls, state: dict) -> MaskedLM:
        return cls({"mask_probability": state["mask_probability"]}, max_length=state["max_length"])


def group_blocks(docs: list[list[int]], tokenizer, max_length: int) -> list[dict]:
    """Token ids of all documents packed into blocks of `max_length` ([CLS] ... [SEP]).

    As in BERT pre-training, text is concatenated after tokenisation and cut into full blocks rather than
    truncated line by line: a long line continues in the next block, short lines share one, so no text is
    thrown away and little is spent on padding. A [SEP] between documents marks where one ends. The last,
    shorter block is kept too.
    """
    size = max_length - 2
    stream: list[int] = []
    for doc in docs:
        if stream:
            stream.append(tokenizer.sep_token_id)
        stream.extend(doc)
    blocks = []
    for start in range(0, len(stream), size):
        ids = [tokenizer.cls_token_id, *stream[start:start + size], tokenizer.sep_token_id]
        blocks.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
    return blocks


def _per_mask(result: list) -> list[list[dict]]:
    """The fill-mask pipeline gives a flat candidate list for one mask and one list per mask for several."""
    return [result] if result and isinstance(result[0], dict) else result
