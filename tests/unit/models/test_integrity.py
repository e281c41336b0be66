"""A damaged model file is refused with its name, never loaded."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import lmtune, squash

from lmtune.errors import ModelError
from lmtune.models.fetch import fetch
from lmtune.models.integrity import MANIFEST, STAMP, hashes


def flip_a_byte(path, at: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_run_is_refused_by_predict(tiny_run, tmp_path, monkeypatch, capsys, damage):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(run), stdin="good\n")
    assert code == 0, err
    assert (run / "model" / STAMP).is_file()  # checked once, remembered by size and time
    weights = run / "model" / "model.safetensors"
    if damage == "flip":
        flip_a_byte(weights)
    else:
        weights.write_bytes(weights.read_bytes()[:1000])
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(run), stdin="good\n")
    assert code == 2
    assert squash(f"{weights} is damaged") in squash(err)
    assert "Traceback" not in out + err


def test_every_saved_model_file_is_recorded(tiny_run):
    recorded = json.loads((tiny_run / "model" / "lmtune.json").read_text())["files"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(recorded)


def test_a_damaged_built_in_model_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LMTUNE_HOME", str(tmp_path))
    folder = tmp_path / "models" / "minilm"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    (folder / MANIFEST).write_text(json.dumps(hashes(folder)))
    assert fetch("minilm") == folder  # intact: no download, no error
    flip_a_byte(folder / "model.safetensors")
    with pytest.raises(ModelError, match="damaged.*lmtune models fetch minilm --force"):
        fetch("minilm")
