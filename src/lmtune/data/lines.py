"""Plain text files, one document per line: the natural input for unlabelled text (masked-LM pre-training)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text (byte {err.start}); re-save the file as UTF-8", file=str(path)) from None
    if not lines:
        raise DataError("the file holds no text (only blank lines)", file=str(path))
    df = pd.DataFrame({"text": list(lines.values())}, index=pd.Index(list(lines), dtype="int64"), dtype=object)
    df.attrs["file"] = str(path)
    return df
