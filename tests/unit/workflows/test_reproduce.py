"""`lmtune reproduce` re-runs a run from its record and finds the same metrics; changed data is refused."""

from __future__ import annotations

import json

from conftest import lmtune, squash

from lmtune.api import train


def test_reproduce_gives_identical_metrics_and_refuses_changed_data(tiny_bert, tmp_path, monkeypatch, capsys):
    rows = [f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40)]
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(rows))
    run = train({"name": "r", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                 "data": {"train": str(data)}, "train": {"max_steps": 4, "batch_size": 8, "seed": 7}})
    record = json.loads((run.model_dir / "lmtune.json").read_text())["record"]
    assert record["seed"] == 7 and record["data"]["train"]["path"] == str(data)
    assert {"torch", "transformers", "accelerate", "peft"} <= set(record["libraries"])
    assert record["base_model"]["sha256"] and record["lmtune"]

    code, out, err = lmtune(monkeypatch, capsys, "reproduce", str(run.path))
    assert code == 0, err
    assert (tmp_path / "runs" / "r-reproduced" / "metrics.json").is_file()
    assert "validation.accuracy" in out and " NO " not in out
    assert squash("metrics identical") in squash(out + err)

    data.write_text("text,label\n" + "".join(rows[:-1]))
    code, out, err = lmtune(monkeypatch, capsys, "reproduce", str(run.path))
    assert code == 2
    assert squash(f"the train data {data} changed since the run") in squash(err)
    assert not (tmp_path / "runs" / "r-reproduced-2").exists()
