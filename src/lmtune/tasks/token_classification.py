"""Token classification: named entities and any other BIO/BIOES tagging of words.

Each word's tag is predicted at its first sub-token; the other sub-tokens and special tokens carry the
label -100, which the loss ignores.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy.special import log_softmax
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from lmtune.config import Config, DataConfig, ModelConfig, TaskConfig
from lmtune.data import quality_report
from lmtune.data.clean import as_given
from lmtune.data.conll import locate, read_tagged
from lmtune.data.readers import file_label
from lmtune.data.scripts import WORD, join_words
from lmtune.data.splits import read_and_split
from lmtune.errors import DataError, UserError
from lmtune.evaluation import intervals
from lmtune.evaluation.inference import model_outputs
from lmtune.evaluation.tagging import best_valid_tags, entity_spans, repair_tags, tagging_metrics
from lmtune.models.load import load_model
from lmtune.tasks.base import Task, TaskSettings

IGNORE = -100  # the label torch's cross-entropy skips
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")
PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}


class TokenClassification(Task):
    name: ClassVar[str] = "token-classification"
    peft_task_type: ClassVar[str] = "TOKEN_CLS"
    input_fields: ClassVar[tuple[str, ...]] = ("tokens", "text")
    purpose: ClassVar[str] = "Tags each word of a text (e.g. named entities)"
    pipeline_tag: ClassVar[str | None] = "token-classification"
    onnx_outputs: ClassVar[tuple[str, ...] | None] = ("logits",)
    metric = "overall_f1"
    higher_is_better = True

    class Settings(TaskSettings):
        tag_decoding: Literal["viterbi", "argmax"] = Field(
            "viterbi", description="Each sentence's most likely valid BIO/BIOES tag sequence (viterbi), or each "
            "word's most likely tag with invalid ones repaired (argmax).")

    def __init__(self, cfg: TaskConfig | dict | None = None, labels: list[str] | None = None, max_length: int = 256):
        super().__init__(cfg)
        self.labels, self.max_length = labels or [], max_length

    @property
    def bioes(self) -> bool:
        return any(tag[:2] in ("E-", "S-") for tag in self.labels)

    # -- data ---------------------------------------------------------------------------------------
    def load(self, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
        d = cfg.data
        if d.train is None:
            raise DataError("no training data given")
        self.max_length = d.max_length
        # Sentences hold many tags each, so held-out splits are drawn at random rather than stratified.
        splits, sources = read_and_split(d, cfg.train.seed, lambda path: read_tagged(path, d.format, d.tag_column),
                                         labels="tags", unit="sentence")
        counts = Counter(tag for tags in splits["train"]["tags"] for tag in tags)
        self.labels = sorted(counts, key=_tag_order)
        for name, rows in splits.items():
            if name != "train":
                self._check_tags_seen(rows)
        report = quality_report(splits, ["tokens"], "tags")
        report["sources"] = sources
        report["tokens"] = {name: int(rows["tokens"].map(len).sum()) for name, rows in splits.items()}
        report["labels"] = {tag: counts[tag] for tag in self.labels}
        return splits, report

    def read_eval(self, data: DataConfig) -> pd.DataFrame:
        """One labelled file, unsplit, checked against the tags the model knows."""
        rows = read_tagged(data.train, data.format, data.tag_column)
        self._check_tags_seen(rows)
        return rows

    def _check_tags_seen(self, rows: pd.DataFrame) -> None:
        known = set(self.labels)
        for sentence, tags in rows["tags"].items():
            for word, tag in enumerate(tags):
                if tag not in known:
                    raise DataError(f"{locate(rows, sentence, word)}: tag {tag!r} never occurs in the training "
                                    f"data (known tags: {', '.join(self.labels)}); the model has no output for "
                                    "it: add training sentences with it, or fix the tag", file=file_label(rows))

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        features = _encode_words(rows["tokens"].tolist(), tokenizer, cfg.max_length)
        cut = sum(_words_seen(f["word_ids"]) < len(tokens) for f, tokens in zip(features, rows["tokens"], strict=True))
        if cut:
            warnings.warn(f"{file_label(rows) or 'data'}: {cut} of {len(rows)} sentences are longer than "
                          f"max_length={cfg.max_length} tokens; their last words are not trained on and are "
                          "predicted 'O' (raise data.max_length to keep them)", stacklevel=2)
        if "tags" in rows:
            index = {tag: i for i, tag in enumerate(self.labels)}
            for f, tags in zip(features, rows["tags"], strict=True):
                f["labels"] = align_labels(f["word_ids"], [index[t] for t in tags])
        return features

    def collate(self, tokenizer):
        pad = DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)

        def collate(features: list[dict]) -> dict[str, torch.Tensor]:
            return pad([{k: v for k, v in f.items() if k in MODEL_INPUTS} for f in features])
        return collate

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        return load_model(AutoModelForTokenClassification, path, cfg, num_labels=len(self.labels),
                          id2label=dict(enumerate(self.labels)), label2id={t: i for i, t in enumerate(self.labels)})

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits.float()
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(),
                                                 ignore_index=IGNORE)

    # -- evaluation and prediction ------------------------------------------------------------------
    def word_tags(self, model, tokenizer, features: list[dict], n_words: list[int],
                  batch_size: int) -> list[tuple[list[str], list[float]]]:
        """Valid tags (task.tag_decoding) and scores (the probability of each word's tag) per word, read at each
        word's first sub-token; words cut off by truncation get 'O' with score 0."""
        logits = model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision, per_token=True)
        out = []
        for f, n, row in zip(features, n_words, logits, strict=True):
            positions = first_subtokens(f["word_ids"])  # the seen words, in order: truncation cuts the tail
            log_probs = log_softmax(row[list(positions)].astype(np.float64), axis=-1)
            if self.cfg.tag_decoding == "viterbi" and len(log_probs):
                best = best_valid_tags(log_probs, self.labels, self.bioes)
            else:
                best = log_probs.argmax(axis=-1).tolist()
            tags, scores = ["O"] * n, [0.0] * n
            for i, (word, tag) in enumerate(zip(positions.values(), best, strict=True)):
                tags[word], scores[word] = self.labels[tag], float(np.exp(log_probs[i, tag]))
            out.append((repair_tags(tags, self.bioes), scores))
        return out

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        gold = rows["tags"].tolist()
        predicted = self.word_tags(model, tokenizer, features, [len(t) for t in gold], batch_size)
        tags = [t for t, _ in predicted]
        metrics = tagging_metrics(gold, tags)
        metrics["sentences"] = len(rows)
        metrics["truncated"] = sum(_words_seen(f["word_ids"]) < len(g) for f, g in zip(features, gold, strict=True))
        records = [{"row": int(row), "tokens": tokens, "gold": g, "tags": t}
                   for row, tokens, g, t in zip(rows.index, rows["tokens"], gold, tags, strict=True)]
        return metrics, records

    @staticmethod
    def interval_data(records: list[dict]) -> intervals.PerExample:
        return intervals.micro_f1("overall_f1", [intervals.entities(r["tags"]) for r in records],
                                  [intervals.entities(r["gold"]) for r in records])

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """Entities with character offsets, for raw `text` rows or pre-tokenised `tokens` rows.

        Raw text is split into words as CoNLL-style training data is (`lmtune.data.scripts.WORD`: punctuation
        split off, each Chinese character a word), the same for every tokenizer: XLM-R's, for one, would keep a
        whole Chinese clause as one "word". Pre-tokenised rows are joined as the language is written.
        """
        if "tokens" in rows:
            words = [[str(w) for w in tokens] for tokens in rows["tokens"]]
            joined = [join_words(w) for w in words]
            texts, spans = [text for text, _ in joined], [span for _, span in joined]
        else:
            # Entity offsets point into the text as the user sent it, so it goes to the model uncleaned.
            texts = ["" if t is None else str(t) for t in as_given(rows)]
            found = [list(WORD.finditer(text)) for text in texts]
            words = [[m.group() for m in matches] for matches in found]
            spans = [[m.span() for m in matches] for matches in found]
        features = _encode_words(words, tokenizer, self.max_length)
        predicted = self.word_tags(model, tokenizer, features, [len(s) for s in spans], batch_size)
        out = []
        for row, text, span, (tags, scores) in zip(rows.index, texts, spans, predicted, strict=True):
            record = {"row": int(row), "text": text, "entities": entity_spans(tags, scores, span, text)}
            if "tokens" in rows:
                record["tokens"], record["tags"] = rows.at[row, "tokens"], tags
            out.append(record)
        return out

    # -- saved state --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"task": self.name, "labels": self.labels, "max_length": self.max_length,
                "tag_decoding": self.cfg.tag_decoding}

    @classmethod
    def from_state(cls, state: dict) -> TokenClassification:
        return cls({"tag_decoding": state.get("tag_decoding", "viterbi")}, labels=state["labels"],
                   max_length=state["max_length"])


def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Label each word's first sub-token; the word's other sub-tokens and special tokens get -100."""
    labels = [IGNORE] * len(word_ids)
    for position, word in first_subtokens(word_ids).items():
        labels[position] = word_labels[word]
    return labels


def first_subtokens(word_ids: list[int | None]) -> dict[int, int]:
    """Position of each word's first sub-token → the word's index."""
    out, previous = {}, None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            out[position] = word
        previous = word
    return out


def _encode_words(words: list[list[str]], tokenizer, max_length: int) -> list[dict]:
    """Features of pre-split words, without SentencePiece's lone word-start marker before a word's own tokens.

    XLM-R-style tokenizers (multilingual-e5-small) turn each pre-split Chinese character into "▁", "高": the
    label would sit on "▁", the same token for every character, and the rows would be twice as long. Unsplit
    Chinese text tokenises with no such marker, so dropping it also matches what the model saw in pre-training.
    """
    _require_fast(tokenizer)
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    marker = tokenizer.get_vocab().get("▁")
    features = []
    for i in range(len(words)):
        ids, word_ids = enc["input_ids"][i], enc.word_ids(i)
        keep = [j for j, word in enumerate(word_ids)
                if not (ids[j] == marker and word is not None and j + 1 < len(ids) and word_ids[j + 1] == word)]
        features.append({**{k: [enc[k][i][j] for j in keep] for k in enc}, "word_ids": [word_ids[j] for j in keep]})
    return features


def _words_seen(word_ids: list[int | None]) -> int:
    return max((w for w in word_ids if w is not None), default=-1) + 1


def _require_fast(tokenizer) -> None:
    if not tokenizer.is_fast:
        raise UserError(f"token classification needs a fast tokenizer (for word ids and offsets); "
                        f"{type(tokenizer).__name__} is a slow one")


def _tag_order(tag: str) -> tuple:
    """'O' first, then grouped by entity type: B-LOC, I-LOC, B-MISC, ... (stable ids across runs)."""
    return (0, "", 0) if tag == "O" else (1, tag[2:], PREFIX_ORDER[tag[0]])
