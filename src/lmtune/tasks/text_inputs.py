"""Helpers for tasks whose examples are one text or a text pair (classification, regression)."""

from __future__ import annotations

import pandas as pd

from lmtune.config import Config, DataConfig
from lmtune.data import load_labelled
from lmtune.data.clean import as_given, within_view


def load_texts(cfg: Config, categorical: bool) -> tuple[dict[str, pd.DataFrame], dict]:
    """load_labelled on the config's text and label columns. Columns it found in the file go into cfg.data, so
    the run's saved config names them and evaluate, predict and resume read the same columns."""
    d = cfg.data
    splits, report = load_labelled(d, {"text": d.text_column, "text_pair": d.text_pair_column}, d.label_column,
                                   seed=cfg.train.seed, categorical=categorical)
    if report["columns"]:
        cfg.data = d.model_copy(update=report["columns"])
    return splits, report


def text_records(rows: pd.DataFrame, pair: bool) -> list[dict]:
    """One output record per row: its source row number and input text(s) as given; the task adds its outputs."""
    out = []
    pairs = as_given(rows, "text_pair") if pair else None
    for row, text in as_given(rows, "text").items():
        record = {"row": int(row), "text": text}
        if pairs is not None:
            record["text_pair"] = pairs[row]
        out.append(record)
    return out


def add_gold(records: list[dict], rows: pd.DataFrame) -> list[dict]:
    for record, gold in zip(records, rows["label"], strict=True):
        record["gold"] = gold
    return records


def encode_unlabelled(task, rows: pd.DataFrame, tokenizer) -> list[dict]:
    """Features for prediction, truncated as in training (the task's saved max_length)."""
    return task.encode(rows.drop(columns=["label"], errors="ignore"), tokenizer, DataConfig(max_length=task.max_length))


def encode_texts(rows: pd.DataFrame, tokenizer, max_length: int, pair: bool) -> list[dict]:
    """Tokenised `text` (and `text_pair`) rows, truncated to max_length, one feature dict per row."""
    pairs = within_view(rows["text_pair"], max_length) if pair else None
    enc = tokenizer(within_view(rows["text"], max_length), pairs, truncation=True, max_length=max_length)
    return [dict(zip(enc.keys(), values, strict=True)) for values in zip(*enc.values(), strict=True)]
