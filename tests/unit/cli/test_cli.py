"""The `lmtune` command, run through its console-script entry point (`lmtune.cli:main`) in this process:
exit codes, error messages without tracebacks, predict/evaluate/config/models output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from conftest import lmtune, squash

from lmtune.config import Config, build_config

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine they lose a lot.
pytestmark = pytest.mark.usefixtures("one_thread")


def write_data(path: Path, n: int = 40) -> Path:
    rows = [f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}" for i in range(n)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory) -> Path:
    from lmtune.api import train

    folder = tmp_path_factory.mktemp("cli")
    data = write_data(folder / "d.csv")
    run = train({"name": "r", "output_dir": str(folder / "runs"), "model": {"name": tiny_bert},
                 "data": {"train": str(data)}, "train": {"max_steps": 2, "batch_size": 8}})
    return run.path


def test_train_with_a_missing_column_names_file_and_column(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = write_data(tmp_path / "reviews.csv")
    code, out, err = lmtune(monkeypatch, capsys, "train", "--data", str(data), "--model", tiny_bert,
                            "--text-column", "review", "--output-dir", str(tmp_path / "runs"))
    assert code == 2
    message = squash(out + err)
    assert "reviews.csv" in message
    assert "column'review'" in message
    assert "Traceback" not in out + err
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started


def test_train_with_a_bad_row_names_file_row_and_column(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "holes.csv"
    data.write_text("text,label\ngood film,pos\nbad film,\nfine film,neg\n")
    code, out, err = lmtune(monkeypatch, capsys, "train", "--data", str(data), "--model", tiny_bert,
                            "--output-dir", str(tmp_path / "runs"))
    assert code == 2
    message = squash(out + err)
    assert "holes.csv" in message
    assert "row2" in message  # the second data row; the header is not counted
    assert "column'label'" in message
    assert "Traceback" not in out + err


def test_train_success(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = write_data(tmp_path / "d.csv")
    code, out, err = lmtune(monkeypatch, capsys, "train", "--data", str(data), "--model", tiny_bert,
                            "--name", "ok", "--max-steps", "1", "--batch-size", "8", "--set", "train.lr=3e-5")
    assert code == 0, err
    run = tmp_path / "runs" / "ok"
    assert (run / "model" / "lmtune.json").is_file()
    assert build_config(yaml.safe_load((run / "config.yaml").read_text())).train.lr == pytest.approx(3e-5)
    assert "accuracy" in out  # the metrics table
    assert "modelsaved:runs/ok/model" in squash(err)
    # The run ends with the verdict against TF-IDF + logistic regression, the report and what to do next.
    assert "Verdict: fine-tuned" in err and "TF-IDF + logistic regression" in err
    assert "Report:runs/ok/report.html" in squash(err)
    assert "Next:lmtunepredictruns/ok" in squash(err)
    assert not (run / "checkpoints").exists()  # a finished run keeps model/, not its optimizer states


def test_train_unknown_key_suggests_the_nearest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = lmtune(monkeypatch, capsys, "train", "--set", "train.lrr=1")
    assert code == 2
    assert squash("did you mean 'train.lr'") in squash(out + err)
    assert "Traceback" not in out + err
    assert not (tmp_path / "runs").exists()


def test_predict_reads_stdin_writes_one_json_line_per_input(trained, monkeypatch, capsys):
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(trained), stdin="good good\n\nbad bad\nthe film\n")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3  # the blank line is skipped
    records = [json.loads(line) for line in lines]
    assert [r["text"] for r in records] == ["good good", "bad bad", "the film"]
    for r in records:
        assert r["label"] in {"neg", "pos"}
        assert set(r["probabilities"]) == {"neg", "pos"}
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_predict_accepts_the_model_folder_too(trained, monkeypatch, capsys):
    code, out, _ = lmtune(monkeypatch, capsys, "predict", str(trained / "model"), stdin="good\n")
    assert code == 0
    assert json.loads(out)["label"] in {"neg", "pos"}


def test_predict_writes_csv(trained, tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "in.csv"
    inputs.write_text("review\ngood film\nbad film\n")
    target = tmp_path / "x.csv"
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(trained), "--input", str(inputs),
                            "--text-column", "review", "--output", str(target))
    assert code == 0, err
    assert out == ""  # predictions go to the file, not stdout
    rows = list(csv.DictReader(target.open()))
    assert [r["text"] for r in rows] == ["good film", "bad film"]
    for r in rows:
        assert r["label"] in {"neg", "pos"}
        probabilities = json.loads(r["probabilities"])
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert float(r["score"]) == pytest.approx(probabilities[r["label"]])


def test_predict_on_a_folder_that_is_not_a_run(tmp_path, monkeypatch, capsys):
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(tmp_path), stdin="good\n")
    assert code == 2
    assert "lmtune.json" in squash(out + err)
    assert "Traceback" not in out + err


def test_evaluate_prints_metrics_json(trained, tmp_path, monkeypatch, capsys):
    data = write_data(tmp_path / "eval.csv", n=10)
    output = tmp_path / "eval-out"
    code, out, err = lmtune(monkeypatch, capsys, "evaluate", str(trained), "--data", str(data),
                            "--output", str(output))
    assert code == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])
    assert 0 <= metrics["accuracy"] <= 1
    assert metrics["n"] == 10
    assert json.loads((output / "metrics.json").read_text()) == metrics
    predictions = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 10
    assert {p["gold"] for p in predictions} == {"neg", "pos"}


def test_evaluate_with_an_unknown_label(trained, tmp_path, monkeypatch, capsys):
    data = tmp_path / "new.csv"
    data.write_text("text,label\ngood,pos\nmeh,neutral\n")
    code, out, err = lmtune(monkeypatch, capsys, "evaluate", str(trained), "--data", str(data))
    assert code == 2
    assert "neutral" in out + err
    assert "Traceback" not in out + err


def test_config_prints_yaml_that_validates(monkeypatch, capsys):
    code, out, _ = lmtune(monkeypatch, capsys, "config")
    assert code == 0
    data = yaml.safe_load(out)
    assert set(data) >= {"name", "task", "data", "model", "method", "train"}
    assert build_config(data) == Config()


def test_models_list(monkeypatch, capsys):
    code, out, err = lmtune(monkeypatch, capsys, "models", "list")
    assert code == 0, err
    assert "minilm" in out
    assert "smollm2-135m" in out


def test_no_arguments_shows_help(monkeypatch, capsys):
    code, out, err = lmtune(monkeypatch, capsys)
    assert code in (0, 2)  # click exits 2 for no_args_is_help on newer versions
    assert "train" in out + err and "predict" in out + err


def test_library_noise_stays_off_the_console(tiny_run, tmp_path):
    """torch's ONNX exporter and onnxruntime's quantiser log at import/export time: a fresh process, as a user's."""
    import subprocess
    import sys

    done = subprocess.run([str(Path(sys.executable).parent / "lmtune"), "export", str(tiny_run), "--quantize",
                           "--output", str(tmp_path / "onnx")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ONNX model in" in done.stderr
    assert "torchvision" not in done.stderr and "WARNING:root" not in done.stderr, done.stderr


def test_warnings_print_as_one_line_without_the_source_line(monkeypatch):
    import warnings

    from lmtune.cli import quiet_libraries

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    quiet_libraries()
    text = warnings.formatwarning("data.csv, row 3: no question text; left out", UserWarning, "squad.py", 45)
    assert text == "warning: data.csv, row 3: no question text; left out\n"
