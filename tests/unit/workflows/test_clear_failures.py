"""Failures a user can cause end in one clear line (file, line, byte; the path being written), exit 2."""

from __future__ import annotations

import errno

import pytest
from conftest import lmtune, squash

from lmtune import io as atomic_io
from lmtune.data.readers import read_table
from lmtune.data.utf8 import first_bad_byte
from lmtune.errors import DataError


def latin1_file(tmp_path, lines_before: int = 3000):
    """A bad byte far past the first 8 KiB block, where a reader's own offset would count from its block."""
    path = tmp_path / "reviews.csv"
    good = "text,label\n" + "".join(f"ein guter Film {i},1\n" for i in range(lines_before))
    path.write_bytes(good.encode() + "schön,0\n".encode("latin-1"))
    return path, len(good.encode()) + len("sch"), lines_before + 2


def test_the_first_bad_byte_is_found_in_the_whole_file_not_a_block(tmp_path):
    path, offset, line = latin1_file(tmp_path)
    assert first_bad_byte(path) == (offset, line)
    path.write_bytes(("好" * 400_000 + "\n").encode())  # 3-byte characters cut by 1 MiB blocks are not errors
    assert first_bad_byte(path) == (None, 2)


def test_training_data_that_is_not_utf8_names_line_and_byte(tmp_path):
    path, offset, line = latin1_file(tmp_path)
    with pytest.raises(DataError, match=f"line {line}, byte {offset:,} of the file \\(0xf6\\)"):
        read_table(path)


def test_predict_input_that_is_not_utf8_is_a_clear_error_and_keeps_the_old_output(tiny_run, tmp_path, monkeypatch,
                                                                                   capsys):
    path, offset, line = latin1_file(tmp_path)
    output = tmp_path / "out.jsonl"
    output.write_text("the previous predictions\n")
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(tiny_run), "-i", str(path), "-o", str(output))
    assert code == 2
    assert squash(f"{path}: not UTF-8 text at line {line}, byte {offset:,}") in squash(err)
    assert "Traceback" not in out + err
    assert output.read_text() == "the previous predictions\n"  # not truncated before the input was read
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_names_the_file_being_written(tiny_run, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_io.os, "fsync", full)
    code, out, err = lmtune(monkeypatch, capsys, "train", "--model", str(tiny_run / "model"), "--max-steps", "1",
                            "--output-dir", str(tmp_path / "runs"))
    assert code == 2
    assert squash("no space left on the disk writing") in squash(err)
    assert squash(str(tmp_path / "runs")) in squash(err)
    assert "Traceback" not in out + err
