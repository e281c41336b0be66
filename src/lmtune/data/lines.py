"""Unlabelled text for continued pre-training (masked or causal LM): plain text files, one document per line,
or the text column of a table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmtune.config import Config, DataConfig
from lmtune.data.clean import clean_text
from lmtune.data.readers import FORMATS, read_table, select_columns
from lmtune.data.splits import quality_report, read_and_split
from lmtune.data.utf8 import not_utf8
from lmtune.errors import DataError


def read_lines(path: str | Path) -> pd.DataFrame:
    """A table with one `text` column, one row per non-blank line; the index is the 1-based line number in
    the file (blank lines are skipped but still counted), so an error can point at the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    try:
        with path.open(encoding="utf-8-sig") as handle:
            lines = {number: line.strip() for number, line in enumerate(handle, start=1) if line.strip()}
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    if not lines:
        raise DataError("the file holds no text (only blank lines)", file=str(path))
    df = pd.DataFrame({"text": list(lines.values())}, index=pd.Index(list(lines), dtype="int64"), dtype=object)
    df.attrs["file"] = str(path)
    return df


def read_corpus(path: str, d: DataConfig) -> pd.DataFrame:
    """A plain text file (any extension that is not a table format) one line per row, or the text column of a
    table; blank lines and empty cells are skipped."""
    if d.format == "auto" and not Path(path).is_dir() and Path(path).suffix.lower() not in FORMATS:
        rows = read_lines(path)
    else:
        table = read_table(path, d.format, d.header, [d.text_column],
                           allow_extra_fields=d.extra_fields == "ignore")
        rows = select_columns(table, {"text": d.text_column})
    rows = clean_text(rows, ["text"], d.lowercase)
    return rows[rows["text"].map(bool)]


def load_corpus(cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
    """Corpus splits (held-out lines are a seeded random sample: no labels to stratify on) and their report."""
    splits, sources = read_and_split(cfg.data, cfg.train.seed, lambda path: read_corpus(path, cfg.data))
    return splits, {**quality_report(splits, ["text"]), "sources": sources}
