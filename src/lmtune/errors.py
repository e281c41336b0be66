"""Errors meant for users: the CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad input, a bad config, a model that cannot be found."""

    exit_code = 2


class ConfigError(UserError):
    """The configuration does not fit the schema."""


class ModelError(UserError):
    """A model name or folder cannot be resolved, fetched or verified."""


class Interrupted(UserError):
    """Ctrl-C during training: a checkpoint was saved, so `--resume` continues where it stopped."""

    exit_code = 130


class DataError(UserError):
    """A data file is unreadable or a row breaks a rule.

    The message always names the file, and the row (1-based, data rows only, a header is not counted)
    and the column where one applies, so the user can jump straight to it.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | int | None = None):
        self.file, self.row, self.column = file, row, column
        where = [f"{file}" if file else None, f"row {row}" if row is not None else None,
                 f"column {column!r}" if column is not None else None]
        prefix = ", ".join(w for w in where if w)
        super().__init__(f"{prefix}: {message}" if prefix else message)
