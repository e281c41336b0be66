"""The one loader tasks call for "text (+ text pair) + label" data: read, clean, check, subsample, split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmtune.config import Column, DataConfig
from lmtune.data.clean import clean_text, normalise_label, split_labels
from lmtune.data.columns import find_columns
from lmtune.data.readers import file_label, read_splits, read_table, select_columns
from lmtune.data.splits import label_set, quality_report, return_unseen, stratified_sample, stratified_split
from lmtune.data.validate import check_classes, check_labels_seen, check_required
from lmtune.errors import ConfigError, DataError

VALIDATION_NAMES = ("validation", "valid", "dev")
EVAL_SPLITS = ("validation", "test")


def load_labelled(cfg: DataConfig, text_columns: dict[str, Column | None], label_column: Column | list[Column],
                  seed: int, *, categorical: bool = True, allow_extra_fields: bool = False,
                  ) -> tuple[dict[str, pd.DataFrame], dict]:
    """Return ({"train", "validation"[, "test"]: table}, quality report with "sources" and "columns").

    Tables have the canonical columns (text_columns' keys and "label"); labels are strings, or sorted lists
    of strings when cfg.label_separator is set or the file holds lists. `categorical=False` is for labels
    that are not classes (scores): splits are then random and evaluation labels need not occur in training.
    Such labels may come from several columns (a list): each "label" cell is then a list, one value per column.
    Text and label columns the config leaves at their defaults and the file lacks are found in the file
    (lmtune.data.columns); report["columns"] holds those, as config keys, for the run's saved config.
    """
    if cfg.train is None:
        raise DataError("no training data given")
    allow_extra = allow_extra_fields or cfg.extra_fields == "ignore"
    given = [c for c in (*text_columns.values(), *_label_names(label_column).values()) if c is not None]
    raw, sources = _read(cfg, cfg.train, given, allow_extra)
    wanted = {f"{canon}_column": col for canon, col in text_columns.items()} | {"label_column": label_column}
    found = find_columns(raw["train"], cfg, wanted, categorical=categorical)
    text_columns = {canon: found.get(f"{canon}_column", col) for canon, col in text_columns.items()}
    labels = _label_names(found.get("label_column", label_column))
    if len(labels) > 1 and (categorical or cfg.label_separator):
        raise ConfigError("data.label_column lists several columns: that is for numeric targets (task "
                          "regression) and cannot be combined with data.label_separator; give one label column")
    mapping = {**text_columns, **labels}
    texts = [name for name, col in text_columns.items() if col is not None]
    tables = {name: _prepare(df, mapping, texts, list(labels), cfg) for name, df in raw.items()}
    if categorical:
        check_classes(tables["train"])

    stratify_on = "label" if categorical else None
    train = tables.pop("train")
    if cfg.max_train_rows:
        train = stratified_sample(train, stratify_on, cfg.max_train_rows, seed)
    carved = stratified_split(train, stratify_on,
                              0 if "validation" in tables else cfg.validation_size,
                              0 if "test" in tables else cfg.test_size, seed)
    splits = {"train": carved.pop("train")}
    for name in EVAL_SPLITS:
        if name in tables:
            splits[name] = tables[name]
        elif name in carved:
            splits[name] = carved[name]
            sources[name] = f"split of {cfg.train}"
    if categorical:
        return_unseen(splits, list(carved))
        seen = label_set(splits["train"])
        for name in tables:
            check_labels_seen(seen, splits[name])
    report = quality_report(splits, texts)
    report["sources"] = {name: sources[name] for name in splits}
    report["columns"] = found
    return splits, report


def _read(cfg: DataConfig, train: str, expected: list[Column],
          allow_extra: bool) -> tuple[dict[str, pd.DataFrame], dict]:
    raw: dict[str, pd.DataFrame] = {}
    if cfg.format == "disk" or (cfg.format == "auto" and Path(train).is_dir()):
        found = read_splits(train)
        if "train" not in found:
            raise DataError(f"the folder has no 'train' split (it has: {', '.join(found)})", file=train)
        names = {"train": "train", "test": "test",
                 "validation": next((n for n in VALIDATION_NAMES if n in found), None)}
        raw = {canon: found[name] for canon, name in names.items() if name is not None and name in found}
    else:
        raw["train"] = read_table(train, cfg.format, cfg.header, expected, allow_extra_fields=allow_extra)
    for name in EVAL_SPLITS:
        path = getattr(cfg, name)
        if path is not None:  # a file named in the config wins over a split inside a datasets folder
            raw[name] = read_table(path, cfg.format, cfg.header, expected, allow_extra_fields=allow_extra)
    return raw, {name: file_label(df) for name, df in raw.items()}


def _label_names(label_column: Column | list[Column]) -> dict[str, Column]:
    """Canonical name -> the user's column: "label", or "label.1", "label.2", ... for several columns."""
    if not isinstance(label_column, list):
        return {"label": label_column}
    if len(label_column) == 1:
        return {"label": label_column[0]}
    return {f"label.{i}": col for i, col in enumerate(label_column, start=1)}


def _prepare(df: pd.DataFrame, mapping: dict[str, Column | None], texts: list[str], labels: list[str],
             cfg: DataConfig) -> pd.DataFrame:
    df = clean_text(select_columns(df, mapping), texts, cfg.lowercase)
    for col in labels:
        df[col] = pd.Series([normalise_label(v) for v in df[col]], index=df.index, dtype=object)
    if cfg.label_separator:
        df = split_labels(df, cfg.label_separator)
    check_required(df, [*texts, *labels], label_columns=labels)
    if labels != ["label"]:  # several label columns: one list cell per row, in the order given
        df["label"] = pd.Series([list(v) for v in zip(*(df[c] for c in labels), strict=True)], index=df.index,
                                dtype=object)
        df = df.drop(columns=labels)
    return df
