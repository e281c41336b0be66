"""Supervised fine-tuning (SFT) data for causal language models: every row becomes one canonical chat.

SFT corpora come in four common shapes: alpaca (instruction, input, output, with LLaMA-Factory's optional
system and history), OpenAI-style messages, ShareGPT conversations, and prompt/completion pairs. Reading
them all into one chat, a list of {"role": "system"|"user"|"assistant", "content": str}, lets one chat
template and one loss mask serve every source.

Rows are checked here, and the first bad one is reported with its file, row and column: a malformed chat
that reached tokenisation would train on the wrong turns, or fail with an error that points nowhere.
Contents are kept exactly as written, because whitespace such as a trailing newline is part of what the
model learns to produce; whitespace-only contents only count as empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmtune.data.clean import is_missing
from lmtune.data.readers import file_label, read_table
from lmtune.errors import DataError

FORMATS = ("alpaca", "messages", "sharegpt", "prompt-completion")
# Required columns, in auto-detection order: a file with both `messages` and `instruction` is a messages file.
REQUIRED = {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ("instruction", "output"),
            "prompt-completion": ("prompt", "completion")}
OPTIONAL = {"alpaca": ("input", "system", "history"), "sharegpt": ("system",)}
ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "system": "system"}

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class _Turn:
    """One message and where it came from, so the order checks can point at the column and the turn."""

    role: str
    content: str
    column: str
    label: str = ""  # "turn 3" or "history pair 2"; empty when the column alone says where


@dataclass(frozen=True)
class _Row:
    """The cells of one data row and its place in the file, for errors."""

    cells: dict
    file: str | None
    number: int

    def error(self, column: str, message: str) -> DataError:
        return DataError(message, file=self.file, row=self.number, column=column)

    def text(self, column: str) -> str:
        value = self.cells.get(column)
        if is_missing(value):
            raise self.error(column, f"{column} is missing")
        if not isinstance(value, str):
            raise self.error(column, f"{column} must be a string, got {_show(value)}")
        return value

    def optional_text(self, column: str) -> str | None:
        """The cell's string, or None when it is absent or blank (LLaMA-Factory files write "" for none)."""
        if is_missing(self.cells.get(column)):
            return None
        value = self.text(column)
        return value if value.strip() else None

    def items(self, column: str, *, required: bool = True) -> list | None:
        """A nested list cell; CSV, TSV and some Parquet files hold it as JSON text."""
        value = self.cells.get(column)
        if is_missing(value):
            if required:
                raise self.error(column, f"{column} is missing")
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise self.error(column, f"expected a list (or its JSON text); the text is not valid JSON: "
                                         f"{err.msg} at character {err.pos}") from None
        value = _as_list(value)
        if not isinstance(value, list):
            raise self.error(column, f"{column} must be a list, got {_show(value)}")
        return value


def read_conversations(path: str | Path, fmt: str = "auto", *, system: str | None = None,
                       data_format: str = "auto", header: bool | None = None) -> pd.DataFrame:
    """Read and check one SFT file: a `messages` column of chats, indexed by the file's 1-based row numbers.

    `fmt` is the chat format (one of FORMATS, or "auto" to detect it from the column names), `data_format`
    the file format given to read_table, and `system` a system prompt added to chats that have none.
    attrs keep the table's "file" and gain "format", the chat format read.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"unknown chat format {fmt!r}; use auto or one of: {', '.join(FORMATS)}", file=str(path))
    # Any format's column name in the first row makes it the header: a chat table has no use without names.
    names = REQUIRED[fmt] if fmt in REQUIRED else tuple(c for columns in REQUIRED.values() for c in columns)
    table = read_table(path, data_format, header, expected=names)
    fmt = _detect(table) if fmt == "auto" else _require(table, fmt)
    build, file = BUILDERS[fmt], file_label(table)
    chats = [_chat(_Row(cells, file, number), build, system)
             for number, cells in zip(table.index, table.to_dict("records"), strict=True)]
    out = pd.DataFrame({"messages": pd.Series(chats, index=table.index, dtype=object)})
    out.attrs = {**table.attrs, "format": fmt}
    return out


def _detect(table: pd.DataFrame) -> str:
    for fmt, columns in REQUIRED.items():
        if all(c in table.columns for c in columns):
            return fmt
    formats = "; ".join(f"{fmt} ({', '.join(columns)})" for fmt, columns in REQUIRED.items())
    raise DataError(f"cannot tell the chat format from the columns found ({_names(table)}); the formats read, "
                    f"with their required columns, are: {formats}", file=file_label(table))


def _require(table: pd.DataFrame, fmt: str) -> str:
    missing = [c for c in REQUIRED[fmt] if c not in table.columns]
    if missing:
        optional = f" (and optional {', '.join(OPTIONAL[fmt])})" if fmt in OPTIONAL else ""
        raise DataError(f"column {missing[0]!r} not found; the {fmt} format reads {', '.join(REQUIRED[fmt])}"
                        f"{optional}; this file has: {_names(table)}", file=file_label(table), column=missing[0])
    return fmt


def _names(table: pd.DataFrame) -> str:
    return ", ".join(map(str, table.columns)) or "no columns"


def _alpaca(row: _Row) -> list[_Turn]:
    instruction, output = row.text("instruction"), row.text("output")
    # Joining only the non-blank parts keeps a row that puts its whole prompt in `input` free of a leading "\n\n".
    prompt = "\n\n".join(p for p in (instruction, row.optional_text("input")) if p is not None and p.strip())
    system = row.optional_text("system")
    head = [_Turn("system", system, "system")] if system is not None else []
    return [*head, *_history(row), _Turn("user", prompt, "instruction"), _Turn("assistant", output, "output")]


def _history(row: _Row) -> list[_Turn]:
    """LLaMA-Factory's `history`: the [user, assistant] pairs that come before the row's own turn."""
    turns = []
    for number, pair in enumerate(row.items("history", required=False) or [], start=1):
        pair, label = _as_list(pair), f"history pair {number}"
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise row.error("history", f"{label}: expected [user, assistant] strings, got {_show(pair)}")
        turns += [_Turn("user", pair[0], "history", label), _Turn("assistant", pair[1], "history", label)]
    return turns


def _messages(row: _Row) -> list[_Turn]:
    return _chat_turns(row, "messages", ("role", "content"), ROLES)


def _sharegpt(row: _Row) -> list[_Turn]:
    turns = _chat_turns(row, "conversations", ("from", "value"), SHAREGPT_ROLES)
    system = row.optional_text("system")
    if system is None:
        return turns
    if turns[0].role == "system":
        raise row.error("system", "the row has a system column and its conversation starts with a system turn; "
                                  "keep one")
    return [_Turn("system", system, "system"), *turns]


def _prompt_completion(row: _Row) -> list[_Turn]:
    return [_Turn("user", row.text("prompt"), "prompt"), _Turn("assistant", row.text("completion"), "completion")]


BUILDERS: dict[str, Callable[[_Row], list[_Turn]]] = {
    "alpaca": _alpaca, "messages": _messages, "sharegpt": _sharegpt, "prompt-completion": _prompt_completion}


def _chat_turns(row: _Row, column: str, keys: tuple[str, str], roles: dict[str, str]) -> list[_Turn]:
    items = row.items(column)
    if not items:
        raise row.error(column, "the chat has no turns")
    return [_turn(item, f"turn {number}", row, column, keys, roles) for number, item in enumerate(items, start=1)]


def _turn(item: object, label: str, row: _Row, column: str, keys: tuple[str, str], roles: dict[str, str]) -> _Turn:
    role_key, content_key = keys
    if not isinstance(item, dict):
        raise row.error(column, f"{label}: expected an object with {role_key!r} and {content_key!r}, "
                                f"got {_show(item)}")
    for key in keys:
        if key not in item:
            raise row.error(column, f"{label} has no {key!r}")
    role, content = item[role_key], item[content_key]
    if not isinstance(role, str) or role not in roles:
        raise row.error(column, f"{label}: unknown role {role!r}; {role_key!r} must be one of: {', '.join(roles)}")
    if not isinstance(content, str):
        raise row.error(column, f"{label}: {content_key!r} must be a string, got {_show(content)}")
    return _Turn(roles[role], content, column, label)


def _check_order(turns: list[_Turn], row: _Row) -> None:
    """One optional system message first, then user and assistant turns alternating, ending with the assistant.

    The assistant turns are what the model learns to write: a chat without a final one teaches nothing, and
    two user turns in a row cannot be told apart by a chat template.
    """
    expected = "user"
    for index, turn in enumerate(turns):
        where = f"{turn.label}: " if turn.label else ""
        if turn.role == "system":
            if index:
                raise row.error(turn.column, f"{where}a system message may only come first, and only once")
            continue
        if turn.role != expected:
            article = "an" if expected == "assistant" else "a"
            raise row.error(turn.column, f"{where}expected {article} {expected} turn, got {turn.role} (after an "
                                         "optional system message, turns alternate user, assistant, user, ...)")
        if not turn.content.strip():
            raise row.error(turn.column, f"{where}the {turn.role} turn is empty")
        expected = "assistant" if expected == "user" else "user"
    last = turns[-1]
    if last.role != "assistant":
        where = f"{last.label}: " if last.label else ""
        raise row.error(last.column, f"{where}the chat ends with a {last.role} turn; it must end with an "
                                     "assistant turn, the reply the model learns to write")


def _chat(row: _Row, build: Callable[[_Row], list[_Turn]], system: str | None) -> Chat:
    """The row's checked chat, with the default system prompt where it has none."""
    turns = build(row)
    _check_order(turns, row)
    # A blank system message is no system prompt: dropping it lets the default take its place.
    chat = [{"role": t.role, "content": t.content} for t in turns if t.role != "system" or t.content.strip()]
    if system is not None and chat[0]["role"] != "system":
        chat.insert(0, {"role": "system", "content": system})
    return chat


def _as_list(value: object) -> object:
    """Lists as plain lists: Parquet and datasets hand nested lists over as NumPy arrays or tuples."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value) if isinstance(value, tuple) else value


def _show(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
