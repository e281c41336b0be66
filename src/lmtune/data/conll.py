"""Read token-tagged sentences (NER and other BIO/BIOES tagging) into one shape of table.

Two sources: CoNLL column files (a token per line, whitespace-separated columns, a blank line between
sentences, `-DOCSTART-` lines skipped) and records with `tokens` and `tags` lists (JSON, JSONL, Parquet).
Either way the result is a table of sentences with the columns `tokens` and `tags` (lists of strings) and
`line` (the source line of the sentence's first token, None for records); its index is the 1-based
sentence or record number and `attrs["file"]` the path, so every later check can point at the exact place.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from lmtune.data.readers import FORMATS, read_table
from lmtune.data.utf8 import not_utf8
from lmtune.errors import DataError

RECORD_FORMATS = ("json", "jsonl", "parquet", "disk")
TAG = re.compile(r"O|[BIES]-.+")
DOCSTART = "-DOCSTART-"


def read_tagged(path: str | Path, fmt: str = "auto", tag_column: int = -1) -> pd.DataFrame:
    """Records for JSON/JSONL/Parquet/datasets folders; anything else is read as CoNLL columns."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    kind = fmt if fmt != "auto" else "disk" if path.is_dir() else FORMATS.get(path.suffix.lower(), "conll")
    if kind == "csv":
        raise DataError("token tagging reads CoNLL column files (.txt, .conll, ...) or JSON/JSONL records "
                        "with 'tokens' and 'tags' lists, not CSV", file=str(path))
    return read_records(path, kind) if kind in RECORD_FORMATS else read_conll(path, tag_column)


def read_conll(path: str | Path, tag_column: int = -1) -> pd.DataFrame:
    path = Path(path)
    sentences: list[tuple[int, list[str], list[str]]] = []  # (first line, tokens, tags)
    tokens: list[str] = []
    tags: list[str] = []
    width = index = first_line = start = 0
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                cells = line.split()
                if not cells or cells[0] == DOCSTART:
                    if tokens:
                        sentences.append((start, tokens, tags))
                        tokens, tags = [], []
                    continue
                if not width:
                    width, first_line = len(cells), number
                    index = _tag_index(tag_column, width, number, path)
                if len(cells) != width:
                    raise DataError(f"line {number} has {len(cells)} columns where the first token line "
                                    f"({first_line}) has {width}; every token line needs the same columns "
                                    "(a space inside a token, or a missing tag?)", file=str(path))
                if not tokens:
                    start = number
                tokens.append(cells[0])
                tags.append(_check_tag(cells[index], f"line {number}, column {index}", path))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    if tokens:
        sentences.append((start, tokens, tags))
    if not sentences:
        raise DataError("no sentences found (expected a token per line, blank lines between sentences)",
                        file=str(path))
    lines, token_lists, tag_lists = zip(*sentences, strict=True)
    return _table(list(token_lists), list(tag_lists), list(lines), str(path))


def read_records(path: Path, fmt: str) -> pd.DataFrame:
    table = read_table(path, fmt)
    for field in ("tokens", "tags"):
        if field not in table.columns:
            raise DataError(f"records need a {field!r} field (a list of strings); the file has: "
                            f"{', '.join(map(str, table.columns))}", file=str(path))
    for number, (tokens, tags) in zip(table.index, zip(table["tokens"], table["tags"], strict=True), strict=True):
        for field, value in (("tokens", tokens), ("tags", tags)):
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise DataError(f"record {number}, field {field!r}: expected a non-empty list of non-empty "
                                f"strings, got {str(value)[:60]}", file=str(path))
        if len(tokens) != len(tags):
            raise DataError(f"record {number}, field 'tags': {len(tags)} tags for {len(tokens)} tokens; every "
                            "token needs exactly one tag", file=str(path))
        for i, tag in enumerate(tags):
            _check_tag(tag, f"record {number}, field 'tags', item {i}", path)
    return _table(list(table["tokens"]), list(table["tags"]), [None] * len(table), str(path))


def locate(rows: pd.DataFrame, sentence: int, word: int) -> str:
    """Where word `word` (0-based) of a sentence sits in its source file, for error messages."""
    line = rows.at[sentence, "line"] if "line" in rows else None
    return f"line {line + word}" if line is not None else f"record {sentence}, token {word + 1}"


def _tag_index(tag_column: int, width: int, number: int, path: Path) -> int:
    index = tag_column if tag_column >= 0 else width + tag_column
    if not 1 <= index < width:  # column 0 is the token
        raise DataError(f"line {number}: tag column {tag_column} is out of range: the line has {width} "
                        f"column(s), the token in column 0 and tags in 1..{width - 1}; set data.tag_column "
                        "(-1 = the last column)", file=str(path))
    return index


def _check_tag(tag: str, where: str, path: Path) -> str:
    if not TAG.fullmatch(tag):
        raise DataError(f"{where}: {tag!r} is not a BIO/BIOES tag (O, B-TYPE, I-TYPE, E-TYPE or S-TYPE); "
                        "is data.tag_column the tag column?", file=str(path))
    return tag


def _table(tokens: list, tags: list, lines: list, file: str) -> pd.DataFrame:
    df = pd.DataFrame({"tokens": tokens, "tags": tags, "line": lines}, index=pd.RangeIndex(1, len(tokens) + 1),
                      dtype=object)
    df.attrs["file"] = file
    return df
