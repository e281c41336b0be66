"""Row checks that stop a run early with the file, row and column to fix, instead of failing mid-training."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from lmtune.data.clean import as_number, is_missing
from lmtune.data.readers import file_label
from lmtune.errors import DataError

MAX_LISTED = 20
MANY = 20  # more distinct labels than this, most of them unique, is not a set of classes


def user_column(df: pd.DataFrame, column: str) -> str | int:
    """The name or position the user gave for a canonical column, for error messages."""
    return df.attrs.get("columns", {}).get(column, column)


def check_required(df: pd.DataFrame, columns: Iterable[str],
                   label_columns: Iterable[str] = ("label",)) -> None:
    """Every listed column must hold a value; text columns must also be non-empty after cleaning."""
    labels = set(label_columns)
    bad = {col: df[col].map(_blank).astype(bool) for col in columns}
    if not bad:
        return
    any_bad = pd.concat(bad, axis=1).any(axis=1)
    if not any_bad.any():
        return
    row = any_bad[any_bad].index[0]
    col = next(c for c, mask in bad.items() if mask[row])
    count = int(any_bad.sum())
    others = f" ({count} rows have this problem)" if count > 1 else ""
    if col in labels:
        message = f"missing label: every row needs a label; add one or delete the row{others}"
    else:
        message = f"empty text: every row needs text in this column; fill it in or delete the row{others}"
    raise DataError(message, file=file_label(df), row=row, column=user_column(df, col))


def check_labels_seen(train_labels: set, df: pd.DataFrame, column: str = "label") -> None:
    """Evaluation rows may only use labels training saw: the model has no output for any other label."""
    unseen = [(row, item) for row, value in df[column].items() if not is_missing(value)
              for item in (value if isinstance(value, list) else [value]) if item not in train_labels]
    if not unseen:
        return
    row, label = unseen[0]
    known = sorted(map(str, train_labels))
    more = f", ... ({len(known)} in all)" if len(known) > MAX_LISTED else ""
    listed = ", ".join(known[:MAX_LISTED]) + more
    others = f"; {len(unseen)} labels in this file are unseen" if len(unseen) > 1 else ""
    raise DataError(f"label {label!r} never occurs in the training data (known labels: {listed}){others}; "
                    "add training rows with this label, or fix or drop the row",
                    file=file_label(df), row=row, column=user_column(df, column))


def check_classes(df: pd.DataFrame, column: str = "label") -> None:
    """Single labels a classifier can learn: two or more classes, and not a score or an ID.

    A column of continuous scores would otherwise become hundreds of classes, each seen a few times, and score
    near zero; an ID column one class per row. Multi-label (list) cells are not checked.
    """
    values = [v for v in df[column] if not is_missing(v) and not isinstance(v, list)]
    distinct = sorted(set(values))
    where = {"file": file_label(df), "column": user_column(df, column)}
    if len(distinct) == 1:
        raise DataError(f"every row has the label {distinct[0]!r}: a classifier needs at least two classes; "
                        "check that this is the label column", **where)
    numbers = [as_number(v) for v in values]
    most_unique = len(distinct) > MANY and len(distinct) > len(values) / 2
    if values and None not in numbers and (most_unique or (len(distinct) > MANY and any(
            not n.is_integer() for n in numbers))):
        raise DataError(f"the labels are {len(distinct)} different numbers ({', '.join(distinct[:3])}, ...): a score, "
                        "not classes; train with --task regression, or give the label column of classes", **where)
    if most_unique:
        raise DataError(f"{len(distinct)} different labels in {len(values)} rows, almost one per row: this looks like "
                        "an ID or text column, not classes; give the label column with --label-column", **where)


def _blank(value: object) -> bool:
    return is_missing(value) or (isinstance(value, str) and not value.strip())
