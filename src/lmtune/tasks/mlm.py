"""Masked-LM continued pre-training on unlabelled domain text (BERT's objective), scored by perplexity.

The saved model/ folder is an AutoModelForMaskedLM with its tokenizer, so any other task can start from it
with `--model runs/<name>/model` (the encoder weights load; the new task head starts fresh).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
from accelerate.utils import extract_model_from_parallel
from transformers import (
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    pipeline,
)

from lmtune.config import Config, DataConfig, ModelConfig, TaskConfig
from lmtune.data import clean_text, quality_report, read_table, select_columns, stratified_sample, stratified_split
from lmtune.data.lines import read_lines
from lmtune.data.readers import FORMATS
from lmtune.errors import ConfigError
from lmtune.models.load import load_model
from lmtune.training.device import resolve_precision

EVAL_SEED = 1234  # one fixed masking for every evaluation, so perplexities before/after training compare
TOP_K = 5


class MaskedLM:
    name: ClassVar[str] = "mlm"
    # PEFT has no masked-LM type; feature extraction passes every input through and adds no head of its own.
    peft_task_type: ClassVar[str] = "FEATURE_EXTRACTION"
    metric = "perplexity"
    higher_is_better = False

    def __init__(self, cfg: TaskConfig, max_length: int = 256):
        self.cfg, self.max_length = cfg, max_length
        self.precision = "auto"

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        d = cfg.data
        self.max_length = d.max_length
        train = read_corpus(d.train, d)
        if d.max_train_rows:
            train = stratified_sample(train, None, d.max_train_rows, cfg.train.seed)
        given = {name: read_corpus(getattr(d, name), d) for name in ("validation", "test") if getattr(d, name)}
        # No labels to stratify on: held-out lines are a seeded random sample.
        carved = stratified_split(train, None, 0 if "validation" in given else d.validation_size,
                                  0 if "test" in given else d.test_size, cfg.train.seed)
        splits = {"train": carved.pop("train"), **carved, **given}
        report = quality_report(splits, ["text"])
        report["sources"] = {"train": d.train, **{name: f"split of {d.train}" for name in carved},
                             **{name: getattr(d, name) for name in given}}
        return splits, report

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        return read_corpus(data.train, data)

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
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        total, count = masked_loss(model, inputs, batch["labels"])
        return total / max(count, 1)  # a batch with nothing masked (tiny texts) gives 0, never NaN

    # -- evaluation and prediction ------------------------------------------------------------------
    def finish(self, model, tokenizer, rows: pd.DataFrame, features: list[dict], batch_size: int) -> None:
        pass  # nothing is tuned on validation data after training

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        """Mean loss over masked tokens and perplexity = exp(loss). No per-row records: blocks span lines."""
        # Each block is masked on its own by a collator seeded afresh, so every evaluation (before training,
        # each epoch, `lmtune evaluate` with any batch size) scores the very same masked tokens, and the
        # training run's random state is left untouched.
        masker = self.collate(tokenizer, seed=EVAL_SEED)
        masked = [{k: v[0].tolist() for k, v in masker([f]).items()} for f in features]
        pad = DataCollatorForTokenClassification(tokenizer)  # pads labels with -100: padding is never scored
        device = next(model.parameters()).device
        bf16 = resolve_precision(self.precision) == "bf16"
        was_training, total, count = model.training, 0.0, 0
        model.eval()
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(masked), batch_size):
                batch = {k: v.to(device) for k, v in pad(masked[start:start + batch_size]).items()}
                labels = batch.pop("labels")
                loss_sum, n = masked_loss(model, batch, labels)
                total, count = total + float(loss_sum), count + n
        model.train(was_training)
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
        for row, text in rows["text"].items():
            fills = _per_mask(next(found)) if mask in text else []
            out.append({"row": int(row), "text": text,
                        "masks": [[{"token": c["token_str"], "score": round(float(c["score"]), 6)} for c in m]
                                  for m in fills]})
        return out

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "max_length": self.max_length, "mask_probability": self.cfg.mask_probability}

    @classmethod
    def from_state(cls, state: dict) -> MaskedLM:
        return cls(TaskConfig(name=cls.name, mask_probability=state["mask_probability"]),
                   max_length=state["max_length"])


def read_corpus(path: str, d: DataConfig) -> pd.DataFrame:
    """Unlabelled text: a plain text file (any extension that is not a table format) one line per row,
    or the text column of a table; blank lines and empty cells are skipped."""
    if d.format == "auto" and not Path(path).is_dir() and Path(path).suffix.lower() not in FORMATS:
        rows = read_lines(path)
    else:
        table = read_table(path, d.format, d.header, [d.text_column],
                           allow_extra_fields=d.extra_fields == "ignore")
        rows = select_columns(table, {"text": d.text_column})
    rows = clean_text(rows, ["text"], d.lowercase)
    return rows[rows["text"].map(bool)]


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


def masked_loss(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the masked positions, their count)."""
    keep = labels != -100
    with _only_positions(model, keep):
        logits = model(**inputs).logits
    if logits.dim() == 3:  # heads that bypass the output-embeddings module return every position
        logits = logits[keep]
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep], reduction="sum"), int(keep.sum())


@contextmanager
def _only_positions(model: torch.nn.Module, keep: torch.Tensor):
    """Project to the vocabulary only where a token was masked, as BERT's own pre-training code does.

    The vocabulary projection costs about as much as the whole 6-layer MiniLM body, and only ~15% of the
    positions are scored; skipping the rest halves training time. transformers has no switch for this in
    masked-LM heads, so a hook hands the output-embeddings layer just the masked positions.
    """
    head = extract_model_from_parallel(model).get_output_embeddings()
    if head is None:
        yield
        return
    handle = head.register_forward_pre_hook(lambda module, args: (args[0][keep], *args[1:]))
    try:
        yield
    finally:
        handle.remove()


def _per_mask(result: list) -> list[list[dict]]:
    """The fill-mask pipeline gives a flat candidate list for one mask and one list per mask for several."""
    return [result] if result and isinstance(result[0], dict) else result
