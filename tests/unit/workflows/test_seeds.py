"""Variance across seeds (`lmtune.seeds`, `lmtune train --seeds`): one run per seed, mean ± std of every metric,
composed with --cv, and ranked by its mean in `lmtune compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import lmtune

from lmtune.errors import ConfigError
from lmtune.reporting.compare import compare_runs, comparison_table
from lmtune.reporting.variance import summarise
from lmtune.seeds import parse_seeds, train_seeds

pytestmark = pytest.mark.usefixtures("one_thread")


def write_data(path: Path) -> str:
    words = [("good", "good"), ("great", "good"), ("bad", "bad"), ("awful", "bad")]
    rows = [f"the film {w} {i},{y}\n" for i in range(12) for w, y in words]
    path.write_text("text,label\n" + "".join(rows), encoding="utf-8")
    return str(path)


def config(tiny_bert: str, data: str, out: Path, name: str) -> dict:
    return {"name": name, "output_dir": str(out), "model": {"name": tiny_bert},
            "data": {"train": data, "max_length": 16},
            "train": {"max_steps": 2, "batch_size": 8, "eval_batch_size": 64}, "task": {"baselines": False}}


def test_summary_is_the_mean_and_sample_std():
    summary = summarise([{"a": 1.0, "b": 2.0, "note": "x"}, {"a": 2.0, "b": 2.0}, {"a": 6.0, "b": 2.0}])
    assert summary == {"a": {"mean": 3.0, "std": pytest.approx(np.sqrt(7.0))}, "b": {"mean": 2.0, "std": 0.0}}


@pytest.mark.parametrize("text", ["1", "1,1", "1,x", ""])
def test_seeds_must_be_two_or_more_distinct_integers(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


@pytest.fixture(scope="module")
def seeded(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeds")
    data = write_data(tmp / "data.csv")
    return train_seeds(config(tiny_bert, data, tmp / "runs", "s"), [1, 2, 3]), tmp / "runs" / "s", data


def test_each_seed_trains_its_own_run_and_the_summary_is_over_them(seeded):
    result, folder, _ = seeded
    assert json.loads((folder / "seeds.json").read_text(encoding="utf-8")) == result
    assert [s["seed"] for s in result["per_seed"]] == [1, 2, 3]
    runs = [json.loads((Path(s["run"]) / "metrics.json").read_text()) for s in result["per_seed"]]
    assert [Path(s["run"]).name for s in result["per_seed"]] == ["seed-1", "seed-2", "seed-3"]
    seeds_used = [yaml.safe_load((Path(s["run"]) / "config.yaml").read_text())["train"]["seed"]
                  for s in result["per_seed"]]
    assert seeds_used == [1, 2, 3]
    f1 = [r["validation"]["f1_macro"] for r in runs]
    assert result["summary"]["validation.f1_macro"]["mean"] == pytest.approx(np.mean(f1))
    assert result["summary"]["validation.f1_macro"]["std"] == pytest.approx(np.std(f1, ddof=1))
    assert "test.accuracy" in result["summary"]
    markdown = (folder / "seeds.md").read_text(encoding="utf-8")
    assert "validation.f1_macro" in markdown and "±" in markdown and "seed 3" in markdown
    assert (folder / "seeds.html").exists()


def test_compare_ranks_a_seed_group_by_its_mean(seeded, tiny_run):
    result, folder, _ = seeded
    compared = compare_runs([folder, tiny_run], metric="f1_macro")
    group = next(row for row in compared["runs"] if row["run"] == str(folder))
    assert group["test"] == pytest.approx(result["summary"]["test.f1_macro"]["mean"])
    assert group["test_std"] == pytest.approx(result["summary"]["test.f1_macro"]["std"])
    seconds = [json.loads((Path(s["run"]) / "metrics.json").read_text())["train"]["seconds"]
               for s in result["per_seed"]]
    assert group["train_seconds"] == pytest.approx(np.mean(seconds), abs=0.01)
    cells = comparison_table(compared)["rows"]
    assert any(f"{group['test']:.4f} ± {group['test_std']:.4f}" in row for row in cells)


def test_seeds_compose_with_cross_validation(tiny_bert, tmp_path):
    data = write_data(tmp_path / "data.csv")
    result = train_seeds(config(tiny_bert, data, tmp_path / "runs", "cvs"), [4, 5], folds=2)
    for seed in result["per_seed"]:
        cv = json.loads((Path(seed["run"]) / "cv.json").read_text(encoding="utf-8"))
        assert cv["seed"] == seed["seed"] and cv["folds"] == 2
        assert seed["metrics"]["validation.accuracy"] == pytest.approx(cv["summary"]["accuracy"]["mean"])
    assert result["folds"] == 2 and "validation.accuracy" in result["summary"]


def test_the_cli_takes_seeds(tiny_bert, tmp_path, monkeypatch, capsys):
    data = write_data(tmp_path / "data.csv")
    code, out, _ = lmtune(monkeypatch, capsys, "train", "--model", tiny_bert, "--data", data, "--seeds", "1,2",
                          "--name", "cli", "--output-dir", str(tmp_path / "runs"), "--max-steps", "1",
                          "--set", "data.max_length=16", "--set", "task.baselines=false")
    assert code == 0, out
    assert (tmp_path / "runs" / "cli" / "seeds.json").exists() and "±" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "1,2", "--resume"], "--resume cannot be combined with --seeds"),
    (["--cv", "2", "--resume"], "--resume cannot be combined with --cv"),
    (["--unlabelled", "u.txt", "--cv", "2"], "does not combine with --cv"),
])
def test_runs_that_train_several_models_refuse_what_they_cannot_do(args, message, monkeypatch, capsys):
    code, out, err = lmtune(monkeypatch, capsys, "train", *args)
    assert code == 2 and message in " ".join((out + err).split())
