"""Seeded, stratified train/validation/test splits and subsamples, and a data quality report over splits."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable

import pandas as pd
from sklearn.model_selection import train_test_split

from lmtune.config import DataConfig
from lmtune.data.clean import is_missing
from lmtune.data.readers import file_label
from lmtune.errors import DataError


def stratified_split(df: pd.DataFrame, label_column: str | None, validation_size: float, test_size: float,
                     seed: int) -> dict[str, pd.DataFrame]:
    """Split rows into train/validation/test keeping class proportions; row numbers (the index) are kept.

    Sizes are fractions of all rows; a split with size 0 is left out. `label_column=None` splits at random
    (for labels that are not classes, such as regression scores).
    """
    n = len(df)
    counts = {"test": _count(test_size, n), "validation": _count(validation_size, n)}
    if n - sum(counts.values()) < 1:
        raise DataError(f"only {n} rows: too few to split off validation/test rows; give a validation file "
                        "or lower data.validation_size / data.test_size", file=file_label(df))
    held: dict[str, pd.DataFrame] = {}
    rest = df
    for name, count in counts.items():
        if count:
            rest, held[name] = _hold_out(rest, label_column, count, seed)
    held_out = {k: held[k].sort_index() for k in ("validation", "test") if k in held}
    return {"train": rest.sort_index(), **held_out}


def read_and_split(d: DataConfig, seed: int, read: Callable[[str], pd.DataFrame], *, labels: str | None = None,
                   unit: str = "row") -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Splits of data split at random (text corpora, chats, tagged sentences): the train file (subsampled to
    max_train_rows), validation/test files when given, otherwise a seeded random share of train; and where each
    split came from. With `labels` (a column of label lists), carved-out rows with a label found nowhere else in
    train go back to train (`return_unseen`, each row a `unit` in its warning)."""
    train = read(d.train)
    if d.max_train_rows:
        train = stratified_sample(train, None, d.max_train_rows, seed)
    given = {name: read(getattr(d, name)) for name in ("validation", "test") if getattr(d, name)}
    carved = stratified_split(train, None, 0 if "validation" in given else d.validation_size,
                              0 if "test" in given else d.test_size, seed)
    if labels:
        return_unseen(carved, [name for name in carved if name != "train"], labels, unit)
    splits = {"train": carved.pop("train"), **carved, **given}
    sources = {"train": d.train, **{name: f"split of {d.train}" for name in carved},
               **{name: getattr(d, name) for name in given}}
    return splits, sources


def stratified_sample(df: pd.DataFrame, label_column: str | None, n: int, seed: int) -> pd.DataFrame:
    """A deterministic subsample of n rows with the class proportions of the whole."""
    if n >= len(df):
        return df
    kept, _ = _hold_out(df, label_column, len(df) - n, seed)
    return kept.sort_index()


def return_unseen(splits: dict[str, pd.DataFrame], carved: list[str], column: str = "label",
                  unit: str = "row") -> None:
    """Rows carved out of train whose label (or one of their labels) is nowhere else in train go back to train.

    A class too rare to stratify, or a tag in a randomly split sentence, can land wholly in a held-out split; the
    model would then have no output for it. The user cannot fix that by editing a row, so it is repaired here
    rather than reported.
    """
    seen = label_set(splits["train"], column)
    for name in carved:
        df = splits[name]
        unseen = pd.Series([any(item not in seen for item in _items(v)) for v in df[column]], index=df.index,
                           dtype=bool)
        if unseen.any():
            warnings.warn(f"{file_label(df)}: moved {unseen.sum()} {name} {unit}(s) back into train: they have a "
                          f"{column!r} value that occurs nowhere else in the training data", stacklevel=3)
            splits["train"] = pd.concat([splits["train"], df[unseen]]).sort_index()
            splits[name] = df[~unseen]
            seen |= label_set(df[unseen], column)


def label_set(df: pd.DataFrame, column: str = "label") -> set:
    """Every label in the column, of single-label and list cells alike."""
    return {item for value in df[column] for item in _items(value)}


def _items(value: object) -> list:
    return value if isinstance(value, list) else [value]


def quality_report(splits: dict[str, pd.DataFrame], text_columns: list[str],
                   label_column: str = "label") -> dict:
    """Counts that flag data problems without stopping the run: duplicates, label conflicts, train leakage."""
    texts = {name: _keys(df, text_columns) for name, df in splits.items()}
    labels = {name: _keys(df, [label_column]) for name, df in splits.items()}
    report: dict = {"rows": {name: len(df) for name, df in splits.items()}, "duplicates": {},
                    "label_conflicts": 0, "leakage": {}}
    for name in splits:
        pairs = list(zip(texts[name], labels[name], strict=True))
        report["duplicates"][name] = len(pairs) - len(set(pairs))
    if "train" in splits:
        seen: defaultdict[tuple, set] = defaultdict(set)
        for text, label in zip(texts["train"], labels["train"], strict=True):
            seen[text].add(label)
        report["label_conflicts"] = sum(len(found) > 1 for found in seen.values())
        report["leakage"] = {name: sum(text in seen for text in texts[name])
                             for name in splits if name != "train"}
    return report


def _count(size: float, n: int) -> int:
    return max(1, round(size * n)) if size > 0 else 0


def _hold_out(df: pd.DataFrame, label_column: str | None, count: int, seed: int):
    """(kept, held out) with `count` rows held out, stratified when every class has enough rows."""
    if label_column is None:
        return train_test_split(df, test_size=count, random_state=seed)
    strata = [_stratum(v) for v in df[label_column]]
    try:
        return train_test_split(df, test_size=count, random_state=seed, stratify=strata)
    except ValueError as err:  # sklearn's way of saying a class is too rare for this split
        warnings.warn(f"{file_label(df)}: cannot stratify on {label_column!r} ({err}); splitting at random "
                      "instead", stacklevel=3)
        return train_test_split(df, test_size=count, random_state=seed)


def _stratum(label: object) -> str:
    # Multi-label rows stratify on their first label: label sets are too many and too rare to stratify on.
    if isinstance(label, list):
        return str(label[0]) if label else ""
    return "" if is_missing(label) else str(label)


def _keys(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    present = [c for c in columns if c in df.columns]
    return list(zip(*(df[c].map(_hashable) for c in present), strict=True)) if present else [()] * len(df)


def _hashable(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if is_missing(value):
        return None  # NaN != NaN, so missing values would never match each other
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
