"""Supervised fine-tuning of a causal LM on chats: instruction following, dialogue, and the templates
(summarisation, translation, classification by generation).

Every row becomes a chat (`lmtune.data.conversations`, or `lmtune.tasks.templates` for plain columns),
rendered with the model's chat template and scored on the assistant's tokens only (`lmtune.models.chat`).
Training rows are length-grouped, or packed with task.packing (`lmtune.training.packing`). Validation is
scored per example, as mean loss per assistant token and perplexity, and after training a sample of it is
answered by generation and scored with ROUGE, BLEU/chrF or exact match, the answers saved in predictions.jsonl.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import pandas as pd
from pydantic import Field

from lmtune.config import Config, DataConfig, TaskConfig
from lmtune.data.conversations import read_conversations
from lmtune.data.readers import file_label
from lmtune.data.splits import read_and_split
from lmtune.errors import DataError
from lmtune.evaluation.generation import generation_metrics, row_scores
from lmtune.generation.generate import Generator, Settings
from lmtune.models.chat import encode_chat, ensure_chat_template
from lmtune.tasks import templates
from lmtune.tasks.base import TaskSettings
from lmtune.tasks.language_model import CausalModelling
from lmtune.training.packing import pack


class SFT(CausalModelling):
    name: ClassVar[str] = "sft"
    input_fields: ClassVar[tuple[str, ...]] = ("text",)
    purpose: ClassVar[str] = ("Answers chat messages in the style of its fine-tuning conversations (generated text "
                              "can be wrong or made up: check it)")
    metric = "loss"
    higher_is_better = False

    class Settings(TaskSettings):
        template: Literal["none", "summarisation", "translation", "classification"] = Field(
            "none", description="Build chats from plain columns with a documented prompt (see `lmtune.tasks."
            "templates`): summarisation/translation read source/target columns, classification text/label columns.")
        source_lang: str = Field("English", description="Translation template: language of the source text.")
        target_lang: str = Field("French", description="Translation template: language to translate into.")
        loss_on: Literal["assistant", "all"] = Field("assistant", description="Which tokens are scored: the "
                                                     "assistant turns only, or the whole rendered chat.")
        packing: bool = Field(False, description="Pack several examples into each max_length row, each one "
                              "attending only to itself. Off by default: on CPU, attention over 1024-token rows "
                              "costs more than the padding of length-grouped batches (benchmarks/packing.py, README). "
                              "Not for soft-prompt methods, which prepend to every row.")
        generate_samples: int = Field(32, ge=0, description="Validation/test rows answered by generation after "
                                      "training, scored and saved in predictions.jsonl (0 = loss/perplexity only).")
        max_new_tokens: int = Field(128, gt=0, description="Generation limit for those answers.")
        generation_metrics: list[Literal["rouge", "bleu", "exact"]] | None = Field(
            None, description="None = by template: rouge for summarisation, bleu+chrF for translation, exact match "
            "for classification, rouge + exact for plain chats.")

    def __init__(self, cfg: TaskConfig | dict | None = None, labels: list[str] | None = None,
                 system: str | None = None, max_length: int = 1024):
        super().__init__(cfg)
        self.labels, self.system, self.max_length = labels or [], system, max_length
        self.packing = self.cfg.packing
        self.generating = False  # answers are generated in the final evaluations only: minutes on a CPU

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        d = cfg.data
        self.system, self.max_length = d.system_prompt, d.max_length
        if self.virtual_tokens and self.packing:
            # PEFT prepends the soft prompt to every row and drops position ids, so packed examples would
            # see each other: such runs pad instead.
            print(f"note: packing is off for {cfg.method.name} (the soft prompt is prepended to every row)")
            self.packing = False
        splits, sources = read_and_split(d, cfg.train.seed, lambda path: self._read(path, d))
        if self.cfg.template != "none":
            if self.cfg.template == "classification":
                self.labels = sorted(set(splits["train"]["target"]))
            splits = {name: templates.to_chats(rows, self.cfg, self.labels, self.system)
                      for name, rows in splits.items()}
        return splits, self._report(splits, sources)

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        rows = self._read(data.train, data)
        if self.cfg.template != "none":
            rows = templates.to_chats(rows, self.cfg, self.labels, self.system)
        return rows

    def _read(self, path: str, d: DataConfig) -> pd.DataFrame:
        if self.cfg.template != "none":
            return templates.read_template_rows(path, self.cfg.template, d)
        return read_conversations(path, d.chat_format, system=self.system, data_format=d.format, header=d.header)

    def _report(self, splits: dict[str, pd.DataFrame], sources: dict) -> dict:
        first = splits["train"]
        chats = first["messages"]
        return {"rows": {name: len(rows) for name, rows in splits.items()}, "sources": sources,
                "chat_format": first.attrs.get("format", f"template {self.cfg.template}"),
                "mean_turns": round(float(chats.map(len).mean()), 2), "packing": self.packing,
                "loss_on": self.cfg.loss_on}

    def prepare_tokenizer(self, tokenizer) -> None:
        """What encode() changes in the tokenizer, apart so that a token-cache hit (no encode) still does it."""
        ensure_chat_template(tokenizer)  # saved with the model, so generation renders chats the same way

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        return self.encode_counted(rows, tokenizer, cfg)[0]

    def encode_counted(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> tuple[list[dict], dict[str, int]]:
        """The chats' features, and how many were truncated or dropped (data.too_long) to fit data.max_length."""
        self.prepare_tokenizer(tokenizer)
        features, counts = [], {"truncated": 0, "dropped": 0}
        for row, chat in rows["messages"].items():
            feature = encode_chat(chat, tokenizer, self.cfg.loss_on)
            if len(feature["input_ids"]) > cfg.max_length:
                feature = _too_long(feature, cfg, file_label(rows), row)
                counts["dropped" if feature is None else "truncated"] += 1
            if feature is None or all(label == -100 for label in feature["labels"][1:]):
                counts["dropped"] += feature is not None  # truncation left no answer token to learn
                continue
            features.append({**feature, "row": row})
        if len(rows) and not features:
            raise DataError(f"no chat fits in data.max_length={cfg.max_length} tokens with any of its answer "
                            "left; raise data.max_length", file=file_label(rows))
        return features, counts

    def prepare_train(self, features: list[dict]) -> list[dict]:
        """Training rows: packed to max_length when packing is on (evaluation always scores one chat a row)."""
        return pack(features, self.max_length) if self.packing else features

    # -- evaluation and prediction ------------------------------------------------------------------
    def finish(self, model, tokenizer, rows: pd.DataFrame, features: list[dict], batch_size: int) -> bool:
        """Turns on generation for the final evaluations; True asks for validation to be scored again with it."""
        self.generating = self.cfg.generate_samples > 0
        return self.generating

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        metrics = {**self.perplexity(model, tokenizer, features, batch_size), "examples": len(features)}
        if not self.generating:
            return metrics, []
        answers = self._answer(model, tokenizer, rows.loc[[f["row"] for f in features[: self.cfg.generate_samples]]],
                               batch_size)
        return {**metrics, "generated": generation_metrics([a["generated"] for a in answers],
                                                           [a["reference"] for a in answers], self.kinds)}, answers

    @property
    def kinds(self) -> list[str]:
        if self.cfg.generation_metrics:
            return list(self.cfg.generation_metrics)
        return templates.METRICS.get(self.cfg.template, ["rouge", "exact"])

    def _answer(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """The last assistant turn of each chat generated from the turns before it, scored against it."""
        generator = Generator(model, tokenizer, self.precision)
        prompts = [generator.prompt(chat[:-1]) for chat in rows["messages"]]
        references = tokenizer([chat[-1]["content"] for chat in rows["messages"]], add_special_tokens=False)
        outputs = generator.generate(prompts, Settings(max_new_tokens=answer_budget(references["input_ids"],
                                                                                    self.cfg.max_new_tokens)),
                                     batch_size)
        records = []
        for (row, chat), output in zip(rows["messages"].items(), outputs, strict=True):
            reference = chat[-1]["content"]
            records.append({"row": int(row), "prompt": chat[-2]["content"], "reference": reference,
                            "generated": output, **row_scores(output, reference, self.kinds)})
        return records

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """An answer for each `text` (the user's message; for templates, the source text the prompt wraps)."""
        return self.generate_for_rows(model, tokenizer, rows, batch_size, self.cfg.max_new_tokens,
                                      system=self.system, wrap=self._user_message)

    def _user_message(self, text: str) -> str:
        return templates.prompt_for(text, self.cfg, self.labels) if self.cfg.template != "none" else text

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        keep = ("template", "source_lang", "target_lang", "loss_on", "generate_samples", "max_new_tokens",
                "generation_metrics", "packing")
        return {"task": self.name, **self.cfg.model_dump(include=set(keep)), "labels": self.labels,
                "system_prompt": self.system, "max_length": self.max_length}

    @classmethod
    def from_state(cls, state: dict) -> SFT:
        task = cls({k: v for k, v in state.items() if k in cls.Settings.model_fields}, state["labels"],
                   state["system_prompt"], state["max_length"])
        task.generating = task.cfg.generate_samples > 0
        return task


def _too_long(feature: dict, cfg: DataConfig, file: str | None, row) -> dict | None:
    """An over-long chat truncated to max_length, or None to drop it, as data.too_long says (or an error)."""
    n = len(feature["input_ids"])
    if cfg.too_long == "error":
        raise DataError(f"the chat is {n} tokens long, over data.max_length={cfg.max_length}; raise "
                        "max_length, or set data.too_long to truncate or drop", file=file, row=row,
                        column="messages")
    if cfg.too_long == "drop":
        return None
    return {k: v[: cfg.max_length] for k, v in feature.items()}


def answer_budget(references: list[list[int]], limit: int) -> int:
    """New tokens for the held-out answers: half as many again as the longest reference (and its end-of-turn
    token), within task.max_new_tokens. Greedy batches run until their longest answer ends, so short answers
    (labels, names) no longer pay for max_new_tokens steps each."""
    return max(1, min(limit, math.ceil(1.5 * max(map(len, references), default=limit)) + 1))
