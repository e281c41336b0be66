"""Text and label clean-up applied before any check, so checks see what the model will see."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable

import pandas as pd


def is_missing(value: object) -> bool:
    """None, NaN or pd.NA; lists (multi-label cells) are never missing, even when empty."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def as_number(value: object) -> float | None:
    """The number a cell holds ('3.5' in a CSV, 3.5 in JSON), or None; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


CHARS_PER_TOKEN = 8  # hardly any token is longer


def within_view(texts: pd.Series, max_length: int) -> list[str]:
    """Texts cut where a model reading `max_length` tokens stops in practice: no token is shorter than a character
    and hardly any longer than CHARS_PER_TOKEN. A tokenizer asked to truncate still tokenises the whole text
    first, which for one 50 MB cell takes gigabytes, for the few hundred tokens kept."""
    return texts.astype(str).str[: CHARS_PER_TOKEN * max_length].tolist()


def clean_string(text: str, lowercase: bool = False) -> str:
    # NFKC folds look-alike forms into one: full-width Chinese punctuation and digits (，１２３) become their
    # ASCII forms and non-breaking or ideographic spaces become plain spaces, so the same words tokenise
    # the same way whichever keyboard or web page they came from.
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return text.lower() if lowercase else text


def clean_text(df: pd.DataFrame, columns: Iterable[str], lowercase: bool = False) -> pd.DataFrame:
    """Strip, collapse whitespace runs to one space, NFKC-normalise and optionally lower-case text columns.

    Cleaning is for the model's input only: each column's text as given stays beside it (`as_given`), for
    outputs that echo the user's text, which must come back exactly as it was sent (a full-width comma too).
    """
    out = df.copy()
    for col in columns:
        out[f"{col}{AS_GIVEN}"] = as_given(df, col)
        out[col] = pd.Series([None if is_missing(v) else clean_string(str(v), lowercase) for v in df[col]],
                             index=df.index, dtype=object)
    return out


AS_GIVEN = "_as_given"  # suffix of the column keeping a text column's uncleaned values


def as_given(rows: pd.DataFrame, column: str = "text") -> pd.Series:
    """A text column as the user gave it, before clean_text (the column itself where it was never cleaned)."""
    return rows.get(f"{column}{AS_GIVEN}", rows[column])


def split_labels(df: pd.DataFrame, separator: str | None, column: str = "label") -> pd.DataFrame:
    """Multi-label cells become sorted lists: 'b, a' -> ['a', 'b'] on ','. A list cell stays a list."""
    out = df.copy()
    out[column] = pd.Series([_label_list(v, separator) for v in df[column]], index=df.index, dtype=object)
    return out


def _label_list(value: object, separator: str | None) -> list | None:
    if isinstance(value, list | tuple):
        return list(value)
    if is_missing(value):
        return None
    parts = str(value).split(separator) if separator else [str(value)]
    return sorted({p.strip() for p in parts if p.strip()})


WHOLE_FLOAT = re.compile(r"-?\d+\.0+")


def normalise_label(value: object) -> str | list[str] | None:
    """Labels as strings, so '1' in a CSV and 1 in a JSON file are one class; '' counts as missing.

    Whole floats lose their '.0' (1.0 and '1.0' become '1'): a column of 0.0/1.0 (pandas reads a numeric column
    with gaps as floats) must give the same classes as the 0/1 a user types or predicts against.
    """
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    if is_missing(value):
        return None
    text = str(value).strip()
    if WHOLE_FLOAT.fullmatch(text):
        text = text.split(".")[0]
    return text or None
