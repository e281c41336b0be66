"""Where a file stops being UTF-8: the line and the byte offset in the whole file.

Python's UnicodeDecodeError counts from the start of whatever block the reader was decoding (csv and text
readers decode 8 KiB at a time), so its offset alone points at the wrong place; this scans the file again."""

from __future__ import annotations

from pathlib import Path

from lmtune.errors import DataError

BLOCK = 1 << 20


def not_utf8(path: str | Path) -> DataError:
    """The error for a file some reader failed to decode as UTF-8."""
    offset, line = first_bad_byte(Path(path))
    where = f"line {line}, byte {offset:,} of the file (0x{_byte(path, offset):02x})" if offset is not None \
        else "somewhere"
    return DataError(f"not UTF-8 text at {where}; re-save the file as UTF-8", file=str(path))


def first_bad_byte(path: Path) -> tuple[int | None, int]:
    """(byte offset, 1-based line) of the first byte that is not valid UTF-8, or (None, lines) if none is."""
    base, lines, carry = 0, 1, b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(BLOCK)
            data = carry + block
            try:
                data.decode("utf-8")
                good, carry = len(data), b""
            except UnicodeDecodeError as err:
                if block and err.reason == "unexpected end of data":
                    good, carry = err.start, data[err.start:]  # a character cut by the block's end
                else:
                    return base + err.start, lines + data.count(b"\n", 0, err.start)
            lines += data.count(b"\n", 0, good)
            base += good
            if not block:
                return None, lines


def _byte(path: str | Path, offset: int) -> int:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(1)[0]
