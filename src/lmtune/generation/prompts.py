"""Prompts for `lmtune generate`: given on the command line, or read from a text or JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

from lmtune.data.lines import read_lines
from lmtune.errors import DataError, UserError


def read_prompts(given: list[str] | None, path: Path | None) -> list[str | list[dict]]:
    """Each prompt is a user message (str) or a chat so far (list of role/content turns)."""
    if bool(given) == bool(path):
        raise UserError("give prompts with --prompt (repeatable) or a file with --input, not both or neither")
    if given:
        return list(given)
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return read_lines(path)["text"].tolist()
    prompts: list[str | list[dict]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                prompts.append(_prompt(line, path, number))
    if not prompts:
        raise DataError("no prompts in the file", file=str(path))
    return prompts


def _prompt(line: str, path: Path, number: int) -> str | list[dict]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON: {err.msg}", file=str(path), row=number) from None
    if isinstance(record, dict) and isinstance(record.get("prompt"), str):
        return record["prompt"]
    if isinstance(record, dict) and isinstance(record.get("messages"), list):
        return record["messages"]
    raise DataError("each line needs a 'prompt' string or a 'messages' list", file=str(path), row=number)
