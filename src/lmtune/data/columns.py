"""The text and label columns of a file whose config does not name them: common names first, then content.

A file with `review,sentiment` (or SST-2's `sentence,label`, or a headerless one) trains without flags. What
was chosen is said in one line and saved in the run's config, so evaluate, predict and resume read the same
columns. Anything unclear stops with the candidates listed: a wrong guess would train on the wrong column.
"""

from __future__ import annotations

import pandas as pd

from lmtune.config import Column, DataConfig
from lmtune.data.clean import as_number, is_missing
from lmtune.errors import DataError

TEXT_NAMES = ("text", "sentence", "review", "comment", "content", "body", "document", "tweet", "message",
              "文本", "评论", "内容", "句子", "评价")
LABEL_NAMES = ("label", "labels", "sentiment", "rating", "class", "category", "target", "score", "标签", "类别")
PAIR_NAMES = (("sentence1", "sentence2"), ("text_a", "text_b"), ("text1", "text2"), ("premise", "hypothesis"),
              ("question1", "question2"))
COMMON_NAMES = frozenset(TEXT_NAMES + LABEL_NAMES + tuple(name for pair in PAIR_NAMES for name in pair))
SAMPLE_ROWS = 2000  # enough rows to judge a column by its values, few enough to be instant on any file
CLOSE = 0.9  # a runner-up text column this close to the longest is too close to call


def find_columns(df: pd.DataFrame, cfg: DataConfig, wanted: dict[str, Column | None], *,
                 categorical: bool) -> dict[str, Column]:
    """The config keys among `wanted` ({"text_column": value, "label_column": ..., "text_pair_column": ...})
    to fill from the file: those the user did not set whose value names no column of `df`. Says what it chose."""
    missing = [key for key, value in wanted.items()
               if key not in cfg.model_fields_set and value == DataConfig.model_fields[key].default
               and value not in df.columns and key != "text_pair_column"]
    if not missing:
        return {}
    sample = df.head(SAMPLE_ROWS)
    taken = [v for k, v in wanted.items() if k not in missing and v is not None and v in df.columns]
    found: dict[str, Column] = {}
    how: dict[str, str] = {}
    if "text_column" in missing:
        pair = _pair(sample) if "text_pair_column" in wanted and "text_pair_column" not in cfg.model_fields_set \
            else None
        if pair:
            found["text_column"], found["text_pair_column"] = pair
            how["text"] = how["text pair"] = "by name"
        else:
            found["text_column"], how["text"] = _text(sample, taken)
        taken += [found["text_column"], *([found["text_pair_column"]] if pair else [])]
    if "label_column" in missing:
        found["label_column"], how["label"] = _label(sample, taken, categorical)
    _say(found, how)
    return found


def _say(found: dict[str, Column], how: dict[str, str]) -> None:
    chosen = ", ".join(f"{key.removesuffix('_column').replace('_', ' ')}={value!r}" for key, value in found.items())
    ways = set(how.values())
    reason = f"found {ways.pop()}" if len(ways) == 1 else ", ".join(f"{role} {way}" for role, way in how.items())
    flags = "/".join(f"--{key.replace('_', '-')}" for key in found)
    print(f"columns: {chosen} ({reason}; set {flags} to change)")


def _named(df: pd.DataFrame, names: tuple[str, ...], taken: list) -> list:
    return [c for c in df.columns if c not in taken and str(c).strip().lower() in names]


def _pair(df: pd.DataFrame) -> tuple[Column, Column] | None:
    for first, second in PAIR_NAMES:
        a, b = _named(df, (first,), []), _named(df, (second,), [])
        if a and b:
            return a[0], b[0]
    return None


def _text(df: pd.DataFrame, taken: list) -> tuple[Column, str]:
    named = _named(df, TEXT_NAMES, taken)
    if len(named) == 1:
        return named[0], "by name"
    if named:
        _ambiguous(df, "text", named, "--text-column")
    lengths = {c: _mean_length(df[c]) for c in df.columns if c not in taken and _is_text(df[c])}
    ranked = sorted(lengths, key=lengths.get, reverse=True)
    if not ranked:
        raise DataError(f"no column holds text (columns: {_listed(df.columns)}); name it with --text-column",
                        file=df.attrs.get("file"))
    if len(ranked) > 1 and lengths[ranked[1]] >= CLOSE * lengths[ranked[0]]:
        _ambiguous(df, "text", ranked[:2], "--text-column", "their values are about as long")
    return ranked[0], "as the longest text"


def _label(df: pd.DataFrame, taken: list, categorical: bool) -> tuple[Column, str]:
    named = _named(df, LABEL_NAMES, taken)
    if len(named) == 1:
        return named[0], "by name"
    if named:
        _ambiguous(df, "label", named, "--label-column")
    rest = [c for c in df.columns if c not in taken]
    if categorical:
        fits, why = [c for c in rest if 2 <= _distinct(df[c]) <= max(2, min(50, len(df) // 4))], "few distinct values"
    else:
        fits, why = [c for c in rest if _is_number_column(df[c])], "numbers"
    if len(fits) == 1:
        return fits[0], f"as the one column of {why}"
    if fits:
        _ambiguous(df, "label", fits, "--label-column", f"each holds {why}")
    raise DataError(f"no label column found (columns: {_listed(df.columns)}; none is named like a label or holds "
                    f"{why}); name it with --label-column", file=df.attrs.get("file"))


def _ambiguous(df: pd.DataFrame, role: str, candidates: list, flag: str, why: str = "") -> None:
    because = f" ({why})" if why else ""
    raise DataError(f"cannot tell which column holds the {role}: {_listed(candidates)} could{because}; choose one "
                    f"with {flag}", file=df.attrs.get("file"))


def _listed(columns) -> str:
    return ", ".join(repr(c) for c in columns)


def _values(column: pd.Series) -> list:
    return [v for v in column if not is_missing(v)]


def _is_text(column: pd.Series) -> bool:
    values = _values(column)
    return bool(values) and all(isinstance(v, str) for v in values) and not _is_number_column(column)


def _mean_length(column: pd.Series) -> float:
    values = _values(column)
    return sum(len(v) for v in values) / len(values)


def _distinct(column: pd.Series) -> int:
    return len({str(v) for v in _values(column)})


def _is_number_column(column: pd.Series) -> bool:
    values = _values(column)
    return bool(values) and all(as_number(v) is not None for v in values)

