"""Extractive question answering (SQuAD v1.1 style): the answer is a span of the context.

A context longer than the token limit is read in overlapping windows. Training labels each window with the
answer's start and end tokens, or with the [CLS] token for both when the answer is not wholly inside it
(the standard SQuAD v1 handling: those windows teach "no answer here"). At evaluation every window of a
question is scored and the best span over all of them wins.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import torch
from pydantic import Field
from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

from lmtune.config import Config, DataConfig, ModelConfig, TaskConfig
from lmtune.data.readers import file_label
from lmtune.data.splits import stratified_sample
from lmtune.data.squad import COLUMNS, article_of, check_questions, read_squad, split_by_article
from lmtune.errors import DataError, UserError
from lmtune.evaluation import intervals
from lmtune.evaluation.inference import model_outputs
from lmtune.evaluation.squad import best_span, question_scores, squad_metrics, written_without_spaces
from lmtune.models.load import load_model
from lmtune.tasks.base import Task, TaskSettings

BOOKKEEPING = ("example", "offsets")  # per-window facts for post-processing, not model inputs


def _start_end(output) -> torch.Tensor:
    return torch.stack([output.start_logits, output.end_logits], -1)


def span_labels(offsets: list, start_char: int, end_char: int, cls_index: int) -> list[int]:
    """[start token, end token] of the answer characters [start_char, end_char) in one window, or
    [cls_index, cls_index] when the window's context tokens do not cover the whole answer."""
    context = [i for i, span in enumerate(offsets) if span is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return [cls_index, cls_index]
    start = next(i for i in context if offsets[i][1] > start_char)
    end = next(i for i in reversed(context) if offsets[i][0] < end_char)
    return [start, end]


class QuestionAnswering(Task):
    name: ClassVar[str] = "question-answering"
    peft_task_type: ClassVar[str] = "QUESTION_ANS"
    input_fields: ClassVar[tuple[str, ...]] = ("question", "context")
    purpose: ClassVar[str] = "Finds the answer to a question as a span of a given context"
    pipeline_tag: ClassVar[str | None] = "question-answering"
    onnx_outputs: ClassVar[tuple[str, ...] | None] = ("start_logits", "end_logits")
    reads_pairs = True  # question + context
    metric = "f1"
    higher_is_better = True

    class Settings(TaskSettings):
        max_answer_length: int = Field(30, gt=0, description="Longest answer span, in tokens.")
        n_best: int = Field(20, gt=0, description="Start/end candidates tried per window.")

    def __init__(self, cfg: TaskConfig | dict | None = None, max_length: int = 256, doc_stride: int = 128):
        super().__init__(cfg)
        self.max_length, self.doc_stride = max_length, doc_stride

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        d = cfg.data
        if d.train is None:
            raise DataError("no training data given")
        self.max_length, self.doc_stride = d.max_length, d.doc_stride
        given = {name: read_squad(getattr(d, name), d.format) for name in ("validation", "test")
                 if getattr(d, name) is not None}
        splits = split_by_article(read_squad(d.train, d.format), 0 if "validation" in given else d.validation_size,
                                  0 if "test" in given else d.test_size, cfg.train.seed)
        splits.update(given)
        if d.max_train_rows:
            splits["train"] = stratified_sample(splits["train"], None, d.max_train_rows, cfg.train.seed)
        seen = set(splits["train"]["context"])
        report = {
            "rows": {name: len(df) for name, df in splits.items()},
            "articles": {name: len(set(article_of(df))) for name, df in splits.items()},
            # evaluation questions asked about a paragraph the model was trained on
            "leakage": {name: int(df["context"].isin(seen).sum()) for name, df in splits.items() if name != "train"},
            "sources": {name: getattr(d, name) if name in given or name == "train" else f"split of {d.train}"
                        for name in splits},
        }
        return splits, report

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        return read_squad(data.train, data.format)

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        if not tokenizer.is_fast:
            raise UserError("question answering needs a fast (Rust) tokenizer: it maps answer characters to tokens "
                            "with the offset mapping, which slow tokenizers lack")
        self._check_room(rows, tokenizer, cfg)
        enc = tokenizer(rows["question"].tolist(), rows["context"].tolist(), truncation="only_second",
                        max_length=cfg.max_length, stride=cfg.doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
        answers = rows["answers"].tolist() if "answers" in rows else [None] * len(rows)
        inputs = [k for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")]
        features = []
        for i, example in enumerate(enc["overflow_to_sample_mapping"]):
            feature = {k: enc[k][i] for k in inputs}
            feature["example"] = example
            # [start, end] lists, not tuples: what the token cache (Arrow) gives back must equal what encode gave
            feature["offsets"] = [list(span) if seq == 1 else None
                                  for span, seq in zip(enc["offset_mapping"][i], enc.sequence_ids(i), strict=True)]
            if answers[example]:  # the first answer is the training target, as in SQuAD training data
                first = answers[example][0]
                ids = feature["input_ids"]
                cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
                feature["labels"] = span_labels(feature["offsets"], first["answer_start"],
                                                first["answer_start"] + len(first["text"]), cls)
            features.append(feature)
        return features

    def _check_room(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> None:
        """Each window must hold more context tokens than the overlap, or the tokenizer aborts the process."""
        special = tokenizer.num_special_tokens_to_add(pair=True)
        lengths = [len(ids) for ids in tokenizer(rows["question"].tolist(), add_special_tokens=False)["input_ids"]]
        for (row, qid), n in zip(rows["id"].items(), lengths, strict=True):
            room = cfg.max_length - special - n
            if room <= cfg.doc_stride:
                raise DataError(f"question id {qid!r} takes {n} tokens, leaving {max(room, 0)} for the context in a "
                                f"window of data.max_length={cfg.max_length}, not more than data.doc_stride="
                                f"{cfg.doc_stride}; raise max_length, lower doc_stride or shorten the question",
                                file=file_label(rows), row=row, column="question")

    def collate(self, tokenizer):
        pad = DataCollatorWithPadding(tokenizer)
        return lambda features: pad([{k: v for k, v in f.items() if k not in BOOKKEEPING} for f in features])

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        return load_model(AutoModelForQuestionAnswering, path, cfg)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return model(**inputs, start_positions=batch["labels"][:, 0], end_positions=batch["labels"][:, 1]).loss

    # -- evaluation and prediction ------------------------------------------------------------------
    def answers(self, model, tokenizer, rows: pd.DataFrame, features: list[dict], batch_size: int) -> list[dict]:
        logits = model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision,
                               extract=_start_end, per_token=True)
        windows: list[list] = [[] for _ in range(len(rows))]
        for feature, values in zip(features, logits, strict=True):
            windows[feature["example"]].append((values, feature["offsets"]))
        return [best_span(context, found, self.cfg.n_best, self.cfg.max_answer_length)
                for context, found in zip(rows["context"], windows, strict=True)]

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        found = self.answers(model, tokenizer, rows, features, batch_size)
        golds = [[a["text"] for a in answers] for answers in rows["answers"]]
        by_char = [written_without_spaces(context) for context in rows["context"]]
        records = []
        for (row, record), answer, gold, chars in zip(rows.iterrows(), found, golds, by_char, strict=True):
            em, f1 = question_scores(answer["answer"], gold, chars)
            records.append({"row": int(row), "id": record["id"], "question": record["question"], "gold": gold,
                            "prediction": answer["answer"], "start": answer["start"], "end": answer["end"],
                            "score": answer["score"], "exact_match": em, "f1": round(f1, 6)})
        return squad_metrics([a["answer"] for a in found], golds, by_char), records

    @staticmethod
    def interval_data(records: list[dict]) -> intervals.PerExample:
        return intervals.mean_of("f1", records)

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        missing = [c for c in ("question", "context") if c not in rows]
        if missing:
            raise UserError(f"question answering predicts from rows with 'question' and 'context'; missing: "
                            f"{', '.join(missing)}")
        table = pd.DataFrame({c: rows.get(c) if c != "answers" else None for c in COLUMNS}, index=rows.index,
                             dtype=object)
        rows = check_questions(table, labelled=False)
        features = self.encode(rows, tokenizer, DataConfig(max_length=self.max_length, doc_stride=self.doc_stride))
        found = self.answers(model, tokenizer, rows, features, batch_size)
        return [{"row": int(row), "question": question, **answer}
                for (row, question), answer in zip(rows["question"].items(), found, strict=True)]

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "max_length": self.max_length, "doc_stride": self.doc_stride,
                "max_answer_length": self.cfg.max_answer_length, "n_best": self.cfg.n_best}

    @classmethod
    def from_state(cls, state: dict) -> QuestionAnswering:
        return cls({"max_answer_length": state["max_answer_length"], "n_best": state["n_best"]},
                   max_length=state["max_length"], doc_stride=state["doc_stride"])
