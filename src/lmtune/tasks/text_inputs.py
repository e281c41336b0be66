"""Helpers for tasks whose examples are one text or a text pair (classification, regression)."""

from __future__ import annotations

import pandas as pd

from lmtune.config import DataConfig


def text_records(rows: pd.DataFrame, pair: bool) -> list[dict]:
    """One output record per row: its source row number and input text(s); the task adds its outputs."""
    out = []
    for row, text in rows["text"].items():
        record = {"row": int(row), "text": text}
        if pair:
            record["text_pair"] = rows.at[row, "text_pair"]
        out.append(record)
    return out


def add_gold(records: list[dict], rows: pd.DataFrame) -> list[dict]:
    for record, gold in zip(records, rows["label"], strict=True):
        record["gold"] = gold
    return records


def encode_unlabelled(task, rows: pd.DataFrame, tokenizer) -> list[dict]:
    """Features for prediction, truncated as in training (the task's saved max_length)."""
    return task.encode(rows.drop(columns=["label"], errors="ignore"), tokenizer, DataConfig(max_length=task.max_length))
