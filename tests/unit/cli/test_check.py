"""`lmtune check`: the data report of `lmtune train` with the same flags, without training."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lmtune.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(tmp_path) -> list[str]:
    rows = [f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}" for i in range(10)]
    (tmp_path / "train.csv").write_text("review,sentiment\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "dev.csv").write_text("review,sentiment\nthe film good 1,pos\nthe film bad,neg\n", encoding="utf-8")
    return ["--data", str(tmp_path / "train.csv"), "--validation", str(tmp_path / "dev.csv"),
            "--set", "data.test_size=0"]


def test_check_json_is_the_data_report_alone_on_stdout(tiny_bert, data):
    result = CliRunner().invoke(app, ["check", *data, "--model", tiny_bert, "--max-length", "12", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)  # the columns line training prints is in "notes", not before the JSON
    assert found["rows"] == {"train": 10, "validation": 2} and found["leakage"] == {"validation": 1}
    assert found["class_balance"]["train"] == {"neg": 5, "pos": 5}
    assert found["lengths"]["max_length"] == 12 and found["lengths"]["measured_rows"] == 10
    assert found["columns"] == {"text_column": "review", "label_column": "sentiment"}


def test_check_preview_json_and_readable_output(tiny_bert, data):
    runner = CliRunner()
    result = runner.invoke(app, ["check", *data, "--preview", "--rows", "2", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["detected"] == {"text_column": "review", "label_column": "sentiment"} and len(found["rows"]) == 2

    result = runner.invoke(app, ["check", *data, "--model", tiny_bert])
    assert result.exit_code == 0, result.output
    assert "class balance" in result.stdout and "token lengths" in result.stdout
    assert "texts also occur in the training data" in " ".join(result.stderr.split())
