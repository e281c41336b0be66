"""`compare_runs`: finished runs of one task side by side, best first, in the metric's own direction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from lmtune.errors import UserError
from lmtune.reporting.compare import compare_runs, comparison_table, write_comparison

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def head_run(tiny_run, tiny_bert, tmp_path_factory) -> Path:
    """tiny_run's data, seed and step count, trained with the head-only method: the same rows, another model."""
    from lmtune.api import train

    data = yaml.safe_load((tiny_run / "config.yaml").read_text())["data"]
    folder = tmp_path_factory.mktemp("head-run")
    run = train({"name": "h", "output_dir": str(folder), "model": {"name": tiny_bert}, "method": {"name": "head"},
                 "data": {"train": data["train"], "max_length": 32}, "task": {"baselines": False},
                 "train": {"max_steps": 2, "batch_size": 8, "eval_batch_size": 32, "seed": 1}})
    return run.path


def edited_copy(run: Path, folder: Path, **changes) -> Path:
    """A copy of a run folder whose metrics.json has `changes` merged in (one level deep)."""
    copy = folder / f"{run.name}-{len(list(folder.iterdir()))}"
    shutil.copytree(run, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    for key, value in changes.items():
        metrics[key] = {**metrics[key], **value} if isinstance(value, dict) else value
    (copy / "metrics.json").write_text(json.dumps(metrics))
    return copy


def test_two_trained_runs_side_by_side(tiny_run, head_run):
    result = compare_runs([tiny_run, head_run])
    assert result["task"] == "classification" and result["metric"] == "accuracy" and result["ranked_by"] == "test"
    assert result["higher_is_better"] and result["warnings"] == []  # same file, same seed: the same test rows
    by_method = {row["method"]: row for row in result["runs"]}
    assert set(by_method) == {"full", "head"}
    assert by_method["head"]["trainable_params"] < by_method["full"]["trainable_params"]
    assert by_method["full"]["model"] == by_method["head"]["model"]
    assert by_method["full"]["baselines"].keys() >= {"tfidf_logreg", "majority"}
    assert by_method["head"]["baselines"] == {}  # trained with task.baselines off
    scores = [row["test"] for row in result["runs"]]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(row["train_seconds"], float) for row in result["runs"])


def test_a_loss_ranks_lower_first(tiny_run, tmp_path):
    # Set losses: two 2-step runs of a random model both sit at ln 2 and may tie under bf16.
    high, low = (edited_copy(tiny_run, tmp_path, test={"log_loss": loss}) for loss in (0.6, 0.3))
    result = compare_runs([high, low], metric="log_loss")
    assert not result["higher_is_better"]
    ranked = [(row["run"], row["test"], row["rank"]) for row in result["runs"]]
    assert ranked == [(str(low), 0.3, 1), (str(high), 0.6, 2)]


def test_order_and_shared_ranks_follow_the_scores(tiny_run, tmp_path):
    low, high, tied = (edited_copy(tiny_run, tmp_path, test={"accuracy": a}) for a in (0.5, 0.9, 0.9))
    result = compare_runs([low, high, tied])
    assert [(row["run"], row["rank"]) for row in result["runs"]] == [(str(high), 1), (str(tied), 1), (str(low), 3)]
    with pytest.raises(UserError, match="no run has a scalar test metric 'bleu'"):
        compare_runs([low, high], metric="bleu")


def test_nested_metrics_are_read_as_group_dot_key(tiny_run, tmp_path):
    worse, better = (edited_copy(tiny_run, tmp_path, validation={"generated": {"rouge1": r}},
                                 test={"generated": {"rouge1": r}}) for r in (0.2, 0.4))
    result = compare_runs([worse, better], metric="generated.rouge1")
    assert [row["test"] for row in result["runs"]] == [0.4, 0.2]


def test_runs_of_different_tasks_are_refused_by_name(tiny_run, tmp_path):
    other = edited_copy(tiny_run, tmp_path, task="regression")
    with pytest.raises(UserError, match="different tasks") as err:
        compare_runs([tiny_run, other])
    assert f"{other} (regression)" in str(err.value) and f"{tiny_run} (classification)" in str(err.value)


def test_runs_scored_on_different_rows_are_flagged(tiny_run, tmp_path):
    other = edited_copy(tiny_run, tmp_path, data={"rows": {"test": 999}})
    (warning,) = compare_runs([tiny_run, other])["warnings"]
    assert "different test rows" in warning and "999 rows" in warning


def test_markdown_and_json_are_written(tiny_run, head_run, tmp_path):
    result = compare_runs([tiny_run, head_run])
    markdown = write_comparison(result, tmp_path / "cmp")
    assert (tmp_path / "cmp.md").read_text(encoding="utf-8") == markdown
    assert json.loads((tmp_path / "cmp.json").read_text())["runs"][0]["run"] == result["runs"][0]["run"]
    header = "| " + " | ".join(comparison_table(result)["columns"]) + " |"
    assert header in markdown and "validation accuracy | test accuracy | TF-IDF + logistic regression (test)" in header
    assert "2 classification runs ranked by test accuracy (higher is better)" in markdown


def test_cli_shows_long_run_names_whole(tiny_run, tmp_path, monkeypatch, capsys):
    from conftest import lmtune

    long = tmp_path / f"sst2-lora-r16-alpha32-lr3e-5-batch16-epochs3-{'x' * 150}"
    shutil.copytree(tiny_run, long)
    code, out, err = lmtune(monkeypatch, capsys, "compare", str(tiny_run), str(long))
    assert code == 0, err
    assert long.name in out
