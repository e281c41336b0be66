"""Read CSV, TSV, JSON, JSONL, Parquet and `datasets` folders into one shape of table.

Every table is a DataFrame of object columns (missing = None) whose index is the 1-based data-row number
in the source file and whose `attrs["file"]` names the file, so any later check can point at the exact row.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from lmtune.config import Column
from lmtune.data.clean import as_number
from lmtune.data.columns import COMMON_NAMES
from lmtune.data.utf8 import not_utf8
from lmtune.errors import DataError

FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}
HEADER_SAMPLE = 1000  # rows compared with the first when guessing whether it is a header
MAX_NAME = 40  # longer first-row cells are text, not column names
FORMAT_HELP = "csv, tsv/tab, json, jsonl/ndjson, parquet/pq, or a folder saved with datasets' save_to_disk"


def file_label(df: pd.DataFrame) -> str | None:
    """The file name to put in an error, with the split when the table came from a datasets folder."""
    file, split = df.attrs.get("file"), df.attrs.get("split")
    return f"{file} [split {split!r}]" if file and split else file


def read_table(path: str | Path, fmt: str = "auto", header: bool | None = None,
               expected: Iterable[Column] = (), *, allow_extra_fields: bool = False) -> pd.DataFrame:
    """Read one table. `expected` (the columns the caller will ask for) drives header detection."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    fmt = _format(path, fmt)
    if fmt == "disk":
        data = _load_disk(path)
        if not _is_single(data):
            raise DataError(f"this folder holds several splits ({', '.join(data)}); read it with read_splits",
                            file=str(path))
        return _from_dataset(data, str(path))
    if fmt in ("csv", "tsv"):
        df = _read_delimited(path, fmt, header, list(expected), allow_extra_fields)
    elif fmt == "json":
        df = _records_table(_json_records(path), str(path))
    elif fmt == "jsonl":
        df = _records_table(_jsonl_records(path), str(path))
    else:
        try:
            df = _plain(pd.read_parquet(path))
        except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
            raise DataError(f"cannot read as Parquet: {err}", file=str(path)) from None
    df.attrs["file"] = str(path)
    return df


def read_splits(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read a `datasets` folder: split name -> table. A folder holding a single Dataset counts as 'train'."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"not a folder saved with datasets' save_to_disk: {path}")
    data = _load_disk(path)
    if _is_single(data):
        return {"train": _from_dataset(data, str(path))}
    return {name: _from_dataset(split, str(path), name) for name, split in data.items()}


def select_columns(df: pd.DataFrame, mapping: dict[str, Column | None]) -> pd.DataFrame:
    """Keep the mapped columns under their canonical names; attrs["columns"] remembers the user's names."""
    chosen = {canon: col for canon, col in mapping.items() if col is not None}
    out = pd.DataFrame({canon: df[_resolve(df, col)] for canon, col in chosen.items()}, index=df.index,
                       dtype=object)
    out.attrs = {**df.attrs, "columns": chosen}
    return out


def _resolve(df: pd.DataFrame, col: Column) -> Column:
    if col in df.columns:
        return col
    headed = df.attrs.get("header", True)
    # With a header, a position still means "the n-th column", which is what a user typing 0 expects.
    if isinstance(col, int) and headed and 0 <= col < len(df.columns):
        return df.columns[col]
    names = ", ".join(repr(c) for c in df.columns)
    if isinstance(col, str) and not headed:
        first = ", ".join(repr(str(v)[:30]) for v in df.attrs.get("first_row", []))
        raise DataError(f"column {col!r} not found: the file has no header: name columns by position "
                        f"0..{len(df.columns) - 1} (its first row, {first}, was read as data because it names "
                        "none of the requested columns and looks like data; if it is a header, make the names match "
                        "it)",
                        file=file_label(df), column=col)
    raise DataError(f"column {col!r} not found; available columns: {names}", file=file_label(df), column=col)


def _format(path: Path, fmt: str) -> str:
    if fmt == "auto":
        if path.is_dir():
            return "disk"
        fmt = FORMATS.get(path.suffix.lower(), "")
        if not fmt:
            raise DataError(f"unknown file type {path.suffix or '(no extension)'!r}; use one of: "
                            f"{FORMAT_HELP} (or set data.format)", file=str(path))
    elif fmt not in set(FORMATS.values()) | {"disk"}:
        raise DataError(f"unknown format {fmt!r}; use one of: csv, tsv, json, jsonl, parquet, disk",
                        file=str(path))
    return fmt


def delimited_rows(path: str | Path, fmt: str) -> Iterator[list[str]]:
    """The non-blank rows of a CSV or TSV file, read lazily (prediction streams large files through this)."""
    # Corpora such as SST-2 carry bare quote characters inside TSV text, so TSV gets no quote processing.
    options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents exceed the 128 KiB default
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        yield from (row for row in csv.reader(handle, **options) if row)  # blank lines are not data rows


def _read_delimited(path: Path, fmt: str, header: bool | None, expected: list[Column],
                    allow_extra: bool) -> pd.DataFrame:
    rows: list[list[str]] = []
    try:
        for row in delimited_rows(path, fmt):
            rows.append(row)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except csv.Error as err:
        raise DataError(f"cannot parse as {fmt.upper()} after data row {len(rows)}: {err}",
                        file=str(path)) from None
    if not rows:
        raise DataError("the file is empty", file=str(path))
    first = rows[0]
    if header is None:
        header = _has_header(first, expected, rows[1:])
    if header:
        columns: list[Column] = list(first)
        body = rows[1:]
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise DataError(f"the header repeats column names {dupes}; rename them", file=str(path))
    else:
        columns, body = list(range(len(first))), rows
    width = len(columns)
    for number, row in enumerate(body, start=1):
        if len(row) != width and not (allow_extra and len(row) > width):
            raise DataError(width_message(fmt, len(row), width, bool(header)), file=str(path), row=number)
    cells = zip(*(r[:width] for r in body), strict=True) if body else [()] * width
    data = {c: [v if v != "" else None for v in col] for c, col in zip(columns, cells, strict=True)}
    df = pd.DataFrame(data, index=pd.RangeIndex(1, len(body) + 1), columns=columns, dtype=object)
    df.attrs["header"] = bool(header)
    if not header:
        df.attrs["first_row"] = first[:10]
    return df


def _has_header(first: list[str], expected: list[Column], body: list[list[str]]) -> bool:
    names = [c for c in expected if isinstance(c, str)]
    if any(n in first for n in names):
        return True
    if expected and not names:
        return False  # only positions asked for: a header row would be read as data, so there is none
    return _looks_like_header(first, body[:HEADER_SAMPLE])


def _looks_like_header(first: list[str], body: list[list[str]]) -> bool:
    """Column names are short, not numbers, and not values their own column repeats; and either one of them is a
    common column name or it heads a column of numbers. A first row of data fails this (a long text, a number,
    a label that recurs below it), and so does a row that could be either, which is read as data."""
    columns = [[row[i] for row in body if i < len(row)] for i in range(len(first))]
    if any(not cell.strip() or len(cell) > MAX_NAME or as_number(cell) is not None or cell in below
           for cell, below in zip(first, columns, strict=True)):
        return False
    return any(cell.strip().lower() in COMMON_NAMES or (below and all(as_number(v) is not None for v in below))
               for cell, below in zip(first, columns, strict=True))


def width_message(fmt: str, got: int, want: int, header: bool) -> str:
    against = "the header" if header else "the first row"
    hint = ("a tab inside the text splits it; replace tabs in the text" if fmt == "tsv"
            else "quote fields that contain commas or line breaks")
    extra = "; or set data.extra_fields=ignore to drop extra trailing fields" if got > want else ""
    return f"malformed row: {got} fields where {against} has {want} ({hint}{extra})"


def _json_records(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON: {err} (a file with one object per line should end in .jsonl)",
                        file=str(path)) from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(data) == 1 and lists:
            data = lists[0]
    if not isinstance(data, list):
        raise DataError('expected a list of objects or an object holding one, like {"data": [...]}',
                        file=str(path))
    return data


def _jsonl_records(path: Path) -> list:
    records = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(f"line {line_number} is not valid JSON: {err.msg}", file=str(path),
                                    row=len(records) + 1) from None
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    return records


def _records_table(records: list, file: str) -> pd.DataFrame:
    keys: dict = {}
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object, got {type(record).__name__}", file=file, row=number)
        keys.update(dict.fromkeys(record))
    data = {k: [r.get(k) for r in records] for k in keys}
    return pd.DataFrame(data, index=pd.RangeIndex(1, len(records) + 1), columns=list(keys), dtype=object)


def _load_disk(path: Path):
    import datasets  # slow to import; only folders need it

    try:
        return datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError("this folder is not a dataset saved with datasets' save_to_disk",
                        file=str(path)) from None


def _is_single(data) -> bool:
    return not isinstance(data, dict)  # a DatasetDict is a dict of splits


def _from_dataset(ds, file: str, split: str | None = None) -> pd.DataFrame:
    import datasets

    df = _plain(ds.to_pandas())
    for name, feature in ds.features.items():
        # Class names are what the user knows the labels by; -1 is datasets' "no label".
        if isinstance(feature, datasets.ClassLabel):
            names = [feature.int2str(int(v)) if v is not None and v >= 0 else None for v in df[name]]
            df[name] = pd.Series(names, index=df.index, dtype=object)
    df.attrs["file"] = file
    if split is not None:
        df.attrs["split"] = split
    return df


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns of plain Python values (lists, not arrays; None, not NaN), indexed from 1."""
    out = df.astype(object)
    out = out.where(out.notna(), None)
    for col in out.columns:
        values = out[col].tolist()
        if any(isinstance(v, np.ndarray) for v in values):
            out[col] = pd.Series([v.tolist() if isinstance(v, np.ndarray) else v for v in values],
                                 index=out.index, dtype=object)
    out.index = pd.RangeIndex(1, len(out) + 1)
    return out
