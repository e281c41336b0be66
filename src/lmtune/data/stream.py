"""Unlabelled inputs read a chunk at a time, so prediction over any file size runs in constant memory.

`read_table` loads a whole file (right for training data, which is tokenised whole anyway); here CSV/TSV,
JSONL and plain text are streamed row by row. JSON, Parquet and `datasets` folders have no cheap row
stream in their formats' readers, so they are loaded whole and then chunked.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from lmtune.config import Column
from lmtune.data.clean import clean_text
from lmtune.data.readers import delimited_rows, read_table, width_message
from lmtune.data.utf8 import not_utf8
from lmtune.errors import DataError


def iter_chunks(path: str | None, text_column: Column = "text", text_pair_column: Column | None = None,
                lines: Iterable[str] | None = None, chunk_rows: int = 10_000, skip: int = 0,
                fields: tuple[str, ...] = ("text",)) -> Iterator[pd.DataFrame]:
    """DataFrames of at most `chunk_rows` rows (index = 1-based input row), the text columns renamed to the
    canonical `text`/`text_pair` and cleaned; other columns (e.g. question/context) pass through. The first
    `skip` rows are passed over without being parsed into frames (resuming a prediction job). A file holding
    none of `fields` (the model's inputs, after renaming) is an error that lists its columns."""
    records = _records(path, lines, [c for c in (text_column, text_pair_column) if isinstance(c, int)])
    names = {c: canon for canon, c in (("text", text_column), ("text_pair", text_pair_column)) if c is not None}
    records = itertools.islice(records, skip, None)
    number = skip
    while chunk := list(itertools.islice(records, chunk_rows)):
        frame = pd.DataFrame(chunk, index=pd.RangeIndex(number + 1, number + 1 + len(chunk)), dtype=object)
        number += len(chunk)
        frame = frame.rename(columns={c: names[c] for c in frame.columns if c in names})
        _check_fields(frame, fields, text_column, path)
        yield _cleaned(frame)


def input_frame(inputs: list[str] | list[dict]) -> pd.DataFrame:
    """Inputs given in memory (the API, the server) as the table iter_chunks yields: rows numbered from 1, a bare
    string as `text`, texts cleaned as in training."""
    return _cleaned(pd.DataFrame([{"text": x} if isinstance(x, str) else x for x in inputs],
                                 index=range(1, len(inputs) + 1)))


def _cleaned(frame: pd.DataFrame) -> pd.DataFrame:
    return clean_text(frame, [c for c in ("text", "text_pair") if c in frame])


def _check_fields(frame: pd.DataFrame, fields: tuple[str, ...], text_column: Column, path: str | None) -> None:
    if any(f in frame for f in fields):
        return
    wanted = f"column {text_column!r}" if "text" in fields else f"columns {', '.join(map(repr, fields))}"
    flag = "; name the text column with --text-column" if "text" in fields else ""
    raise DataError(f"no {wanted} for the model to read; the file's columns: "
                    f"{', '.join(repr(c) for c in frame.columns)}{flag}", file=path or "<stdin>")


def _records(path: str | None, lines: Iterable[str] | None, positions: list[int]) -> Iterator[dict]:
    if path is None:
        yield from _line_records(lines if lines is not None else sys.stdin, "<stdin>")
        return
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".txt", ".jsonl", ".ndjson"):
            with open(path, encoding="utf-8-sig") as handle:
                yield from _line_records(handle, path)
        elif suffix in (".csv", ".tsv", ".tab"):
            yield from _delimited_records(path, "csv" if suffix == ".csv" else "tsv", header=not positions)
        else:
            yield from read_table(path, expected=positions).to_dict("records")
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _line_records(lines: Iterable[str], source: str) -> Iterator[dict]:
    """Plain text lines, or JSON objects for inputs with several fields ({"question": ..., "context": ...})."""
    for number, line in enumerate(line for line in lines if line.strip()):
        if line.lstrip().startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"not valid JSON: {err.msg}", file=source, row=number + 1) from None
        else:
            yield {"text": line.rstrip("\n")}


def _delimited_records(path: str, fmt: str, header: bool) -> Iterator[dict]:
    rows = delimited_rows(path, fmt)  # the same CSV/TSV conventions as read_table, one row at a time
    first = next(rows, None)
    if first is None:
        return
    columns: list = list(first) if header else list(range(len(first)))
    if not header:
        rows = itertools.chain([first], rows)
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise DataError(width_message(fmt, len(row), len(columns), header), file=path, row=number)
        yield dict(zip(columns, row, strict=True))
