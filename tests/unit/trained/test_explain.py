"""Explanations of a trained run: explanations.json and the report's section at the end of training, the
faithfulness numbers in metrics.json, and `lmtune explain`."""

from __future__ import annotations

import json

import pytest
from conftest import lmtune

from lmtune.trained.explain import text_pieces

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_classification_run_explains_its_worst_errors_and_some_correct_rows(tiny_run):
    found = json.loads((tiny_run / "explanations.json").read_text(encoding="utf-8"))
    predictions = [json.loads(line) for line in (tiny_run / "predictions.jsonl").read_text().splitlines()]
    assert found["method"] == "integrated gradients"
    titles = [g["title"] for g in found["groups"]]
    assert titles == ["Most confident errors", "Correct predictions"]
    errors, correct = (g["rows"] for g in found["groups"])
    assert all(row["prediction"] != row["gold"] for row in errors)
    assert all(row["prediction"] == row["gold"] for row in correct)
    wrong = sorted((p for p in predictions if p["label"] != p["gold"]), key=lambda p: -p["score"])
    assert [row["row"] for row in errors] == [p["row"] for p in wrong[: len(errors)]]
    for row in errors + correct:
        (field,) = row["fields"]
        assert field["field"] == "text" and field["spans"]
        assert all(field["text"][start:end].strip() for start, end, _ in field["spans"])


def test_the_faithfulness_check_is_in_the_metrics_and_the_report(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text(encoding="utf-8"))
    check = metrics["faithfulness"]
    assert check["k"] == 3 and check["rows"] > 0
    assert isinstance(check["top_k_drop"], float) and isinstance(check["random_drop"], float)
    html = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert "Explanations" in html and 'class="attributed"' in html and "rgba(" in html
    assert "Faithfulness over" in (tiny_run / "report.md").read_text(encoding="utf-8")


def test_text_pieces_cover_the_text_and_scale_to_the_largest():
    field = {"text": "not good at all", "spans": [[0, 3, -0.2], [4, 8, 0.4], [12, 15, 0.1]]}
    pieces = text_pieces(field)
    assert "".join(p for p, _ in pieces) == "not good at all"
    assert pieces == [("not", -0.5), (" ", 0.0), ("good", 1.0), (" at ", 0.0), ("all", 0.25)]


def test_the_cli_explains_texts(tiny_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "attributions.jsonl"
    code, out_text, err_text = lmtune(monkeypatch, capsys, "explain", str(tiny_run), "the film good", "bad food",
                                      "-o", str(out))
    printed = out_text + err_text
    assert code == 0, printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["fields"][0]["text"] == "the film good"
    assert rows[0]["prediction"] in ("good", "bad") and "integrated gradients" in printed


def test_explaining_needs_a_text(tiny_run, monkeypatch, capsys):
    code, _, err = lmtune(monkeypatch, capsys, "explain", str(tiny_run))
    assert code != 0 and "--input" in err
