"""The run report (report.html, report.md), the model card and their parts: a tiny classification run end to
end, `lmtune report`, calibration and error analysis by hand, and fake run folders of every task."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from lmtune.cli import main
from lmtune.evaluation.calibration import expected_calibration_error, reliability_bins
from lmtune.evaluation.error_analysis import accuracy_by_length, confident_mistakes, confused_pairs
from lmtune.reporting import report
from lmtune.reporting.blocks import cell
from lmtune.reporting.model_card import front_matter, write_model_card
from lmtune.reporting.report import build_report, write_reports
from lmtune.reporting.run_files import read_run
from lmtune.tasks import TASKS

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "wbr", "source"}
PNG = b"\x89PNG\r\n\x1a\n"


# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine they lose a lot.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tiny_bert, tmp_path_factory) -> Path:
    from lmtune.api import train

    folder = tmp_path_factory.mktemp("report")
    words = {"pos": ["good", "great", "love"], "neg": ["bad", "awful", "hate"]}
    rows = [f"the film {words['pos' if i % 2 else 'neg'][i % 3]}{' really' * (i % 5)} {i},{'pos' if i % 2 else 'neg'}"
            for i in range(60)]
    (folder / "d.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    run = train({"name": "r", "output_dir": str(folder / "runs"), "model": {"name": tiny_bert},
                 "task": {"lstm_baseline": True},
                 "data": {"train": str(folder / "d.csv"), "max_length": 32},
                 "train": {"max_steps": 4, "batch_size": 8, "log_every": 1, "eval_every": 2, "seed": 1}})
    return run.path


class TagChecker(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element; `open` is left unclosed ones."""

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k == "id")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def parse(html: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(html)
    checker.close()
    return checker


def lmtune(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["lmtune", *args])
    try:
        main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def front_and_body(card: str) -> tuple[dict, str]:
    match = re.match(r"---\n(.*?)\n---\n(.*)", card, re.S)
    assert match, "no YAML front matter"
    return yaml.safe_load(match.group(1)), match.group(2)


# -- the tiny classification run ------------------------------------------------------------------------------
def test_training_writes_a_well_formed_self_contained_html_report(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    checker = parse(html)
    assert checker.open == []
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<script|<link|src=\"(?!data:)", html)  # nothing to fetch, nothing to run
    assert {"confusion_matrix", "roc_curve", "pr_curve", "reliability_diagram", "loss_curve",
            "validation_curve"} <= checker.ids


def test_html_embeds_the_confusion_matrix_and_the_per_class_table(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    figure = re.search(r'<figure id="confusion_matrix">\s*<img src="data:image/png;base64,([^"]+)"', html)
    assert figure and base64.b64decode(figure.group(1)).startswith(PNG)
    table = re.search(r"<th>per class</th>.*?</table>", html, re.S).group(0)
    assert "<th>precision</th><th>recall</th><th>f1</th><th>support</th>" in table
    assert "<td>pos</td>" in table and "<td>neg</td>" in table


def test_markdown_report_has_the_tables_and_links_existing_figures(run_dir):
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| per class | precision | recall | f1 | support |" in md
    assert re.search(r"^\| accuracy \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ - [0-9.]+ \|$", md, re.M)  # + its 95% CI
    links = re.findall(r"\]\((report_files/[a-z_]+\.png)\)", md)
    assert "report_files/confusion_matrix.png" in links
    assert all((run_dir / link).read_bytes().startswith(PNG) for link in links)


def test_report_shows_error_analysis_calibration_and_the_baselines(run_dir):
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"tfidf_logreg", "majority", "bilstm", "lift", "lift_bilstm"}
    assert "| majority class |" in md and "| TF-IDF + logistic regression |" in md
    assert "| BiLSTM (from scratch) |" in md
    assert "Lift over TF-IDF + logistic regression on test accuracy" in md
    assert "Lift over BiLSTM (from scratch) on test accuracy" in md
    assert "Expected calibration error (10 equal-width confidence bins)" in md
    assert "*Accuracy by input length (word-count quartiles)*" in md
    assert "could not be built" not in md


def test_model_card_has_parsable_front_matter_and_a_results_table(run_dir):
    meta, body = front_and_body((run_dir / "model" / "README.md").read_text(encoding="utf-8"))
    assert meta["library_name"] == "transformers"
    assert meta["tags"][:2] == ["lmtune", "classification"]
    assert "accuracy" in meta["metrics"]
    assert "base_model" not in meta  # a local folder is no hub id
    for heading in ("Intended use", "Training data", "Evaluation results", "Training procedure", "Limitations"):
        assert f"\n## {heading}\n" in body
    results = body.split("## Evaluation results")[1].split("\n## ")[0]
    assert "| metric | validation | test | 95% CI (test) |" in results
    assert "The test set has only 6 examples" in body  # < 500: the small-set warning
    assert "same source as the training data" in body


def test_lmtune_report_rebuilds_the_report_and_the_card(run_dir, tmp_path, monkeypatch):
    copy = shutil.copytree(run_dir, tmp_path / run_dir.name)  # the same name: the report shows it
    for name in ("report.html", "report.md", "model/README.md"):
        (copy / name).unlink()
    shutil.rmtree(copy / "report_files")
    assert lmtune(monkeypatch, "report", str(copy)) == 0
    assert (copy / "report.html").read_text() == (run_dir / "report.html").read_text()
    assert (copy / "model" / "README.md").read_text() == (run_dir / "model" / "README.md").read_text()
    assert (copy / "report_files" / "confusion_matrix.png").exists()


def test_lmtune_report_on_a_folder_that_is_not_a_run(tmp_path, monkeypatch, capsys):
    assert lmtune(monkeypatch, "report", str(tmp_path)) == 2
    assert "notanlmtunerunfolder" in "".join(capsys.readouterr().err.split())  # rich wraps at the terminal width


def test_a_failing_report_is_logged_and_the_model_card_still_written(run_dir, tmp_path, monkeypatch, caplog):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "model" / "README.md").unlink()

    def broken(path):
        raise RuntimeError("no disk")

    monkeypatch.setattr(report, "build_report", broken)
    with caplog.at_level(logging.WARNING):
        write_reports(copy)
    assert "no disk" in caplog.text and "lmtune report" in caplog.text
    assert (copy / "model" / "README.md").exists()


# -- parts computed by hand -----------------------------------------------------------------------------------
def test_expected_calibration_error_by_hand():
    # bin (0.9, 1]: 2 examples, confidence 0.95, accuracy 0.5 -> gap 0.45
    # bin (0.6, 0.7]: 4 examples, confidence 0.65, accuracy 0.75 -> gap 0.10
    # ECE = 2/6 * 0.45 + 4/6 * 0.10 = 0.21667
    confidence = [0.95, 0.95, 0.65, 0.65, 0.65, 0.65]
    correct = [1, 0, 1, 1, 1, 0]
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.15 + 0.4 / 6)
    bins = reliability_bins(confidence, correct)
    assert [(b["low"], b["n"], b["accuracy"]) for b in bins] == [(pytest.approx(0.6), 4, 0.75),
                                                                 (pytest.approx(0.9), 2, 0.5)]
    assert expected_calibration_error([1.0, 0.5, 0.5], [1, 1, 0]) == 0.0  # 1.0 falls in the last bin


def test_error_analysis_by_hand():
    records = [{"text": "a b", "gold": "x", "label": "y", "score": 0.6},
               {"text": "a b c d", "gold": "x", "label": "y", "score": 0.9},
               {"text": "a", "gold": "y", "label": "y", "score": 0.8},
               {"text": "a b c d e f", "gold": "y", "label": "x", "score": 0.7}]
    assert [m["confidence"] for m in confident_mistakes(records, k=2)] == [0.9, 0.7]
    assert confused_pairs(records)[0] == {"gold": "x", "predicted": "y", "count": 2, "share_of_gold": 1.0}
    buckets = accuracy_by_length(records)
    assert [b["n"] for b in buckets] == [1, 1, 1, 1]
    assert [b["accuracy"] for b in buckets] == [1.0, 0.0, 0.0, 0.0]  # shortest first


# -- fake run folders: every task, and files the report does not understand --------------------------------
def fake_run(folder: Path, task: str, metrics: dict, predictions: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"task": task, "model": "minilm", "method": "lora", **metrics}))
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in predictions))
    (folder / "train_log.jsonl").write_text('{"step": 1, "loss": 0.9}\n{"step": 2, "loss": 0.5}\n{"step": 2, '
                                            '"eval": {"x": 1.0}}\n{"step": 3, "lo')  # a run killed mid-line
    (folder / "model").mkdir()
    return folder


FAKE = {
    "classification": ({"validation": {"accuracy": 0.5, "per_class": {"a": {"precision": 0.5, "support": 2}}}},
                       [{"text": "x y", "label": "a", "score": 0.7, "gold": "b", "probabilities": {"a": 0.7, "b": 0.3}},
                        {"text": "x", "label": "b", "score": 0.6, "gold": "b", "probabilities": {"a": 0.4, "b": 0.6}}]),
    "regression": ({"validation": {"pearson": 0.8, "spearman": 0.7, "mse": 0.2}},
                   [{"text": "x", "score": 1.0, "gold": 1.2}, {"text": "y", "score": 3.0, "gold": 2.5},
                    {"text": "z", "score": 4.0, "gold": 4.1}]),
    "token-classification": ({"validation": {"overall_f1": 0.5, "per_type": {"PER": {"f1": 0.5, "support": 1}}}},
                             [{"tokens": ["Ann", "ran"], "gold": ["B-PER", "O"], "tags": ["B-PER", "O"]},
                              {"tokens": ["Bo"], "gold": ["B-PER"], "tags": ["O"]}]),
    "question-answering": ({"validation": {"exact_match": 0.5, "f1": 0.6, "questions": 2}},
                           [{"question": "q", "gold": ["a"], "prediction": "a", "f1": 1.0, "exact_match": 1.0},
                            {"question": "r", "gold": ["b"], "prediction": "c", "f1": 0.2, "exact_match": 0.0}]),
    "mlm": ({"validation": {"loss": 2.0, "perplexity": 7.39}}, []),
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_report_and_card_build_for_every_task(task, tmp_path):
    metrics, predictions = FAKE.get(task, ({"validation": {"score": 1.0}}, []))  # a task added since: generic
    folder = fake_run(tmp_path / task, task, metrics, predictions)
    html, md = build_report(folder)
    text = md.read_text(encoding="utf-8")
    assert "could not be built" not in text
    assert "## Results" in text and "## Training curves" in text
    assert parse(html.read_text(encoding="utf-8")).open == []
    meta, _ = front_and_body(write_model_card(folder).read_text(encoding="utf-8"))
    assert meta["tags"][:2] == ["lmtune", task]
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_breakdowns_and_scatter_appear_where_the_task_has_them(tmp_path):
    for task in ("regression", "token-classification"):
        fake_run(tmp_path / task, task, *FAKE[task])
        build_report(tmp_path / task)
    assert (tmp_path / "regression" / "report_files" / "scatter.png").exists()
    assert "| per type | f1 | support |" in (tmp_path / "token-classification" / "report.md").read_text()


def test_an_unknown_task_gets_the_generic_sections(tmp_path):
    folder = fake_run(tmp_path / "odd", "summarization", {"validation": {"rouge": 0.3}}, [{"summary": "s"}])
    text = build_report(folder)[1].read_text(encoding="utf-8")
    assert "| rouge | 0.3000 |" in text
    assert "## Training curves" in text and "loss_curve.png" in text
    assert "could not be built" not in text


def test_a_section_that_cannot_be_built_is_replaced_by_a_warning(tmp_path):
    metrics, predictions = FAKE["classification"]
    predictions = [*predictions, {**predictions[0], "gold": "a label the model never had"}]
    text = build_report(fake_run(tmp_path / "r", "classification", metrics, predictions))[1].read_text()
    assert "## Classification\n\n> **Warning:** This section could not be built: KeyError" in text
    assert "## Results" in text and "## Training curves" in text


def test_run_files_skip_a_half_written_log_line(tmp_path):
    folder = fake_run(tmp_path / "r", "classification", *FAKE["classification"])
    assert [r.get("step") for r in read_run(folder).log] == [1, 2, 2]


def test_built_in_base_models_are_named_by_hub_id(tmp_path):
    folder = fake_run(tmp_path / "r", "regression", *FAKE["regression"])
    meta = front_matter(read_run(folder))
    assert meta["pipeline_tag"] == "text-classification" and meta["metrics"] == ["pearson", "spearman", "mse"]


def test_one_point_curves_are_stated_not_drawn(tmp_path):
    from lmtune.reporting.analysis import curve_sections
    from lmtune.reporting.run_files import RunFiles

    run = RunFiles(tmp_path, log=[{"step": 2, "loss": 0.6931}, {"step": 2, "eval": {"accuracy": 0.75}}])
    blocks = [b for s in curve_sections(run, "accuracy") for b in s["blocks"]]
    assert all(b["kind"] != "figure" for b in blocks)
    said = " ".join(b.get("text", "") for b in blocks)
    assert "Training loss: 0.6931 at step 2" in said and "Validation accuracy: 0.7500 at step 2" in said


@pytest.mark.parametrize(("value", "shown"), [
    (963, "963"), (7700.0, "7,700"), (2.0, "2"), (121.8, "121.8"), (126.27, "126.27"), (0.91234, "0.9123"),
    (1e-4, "0.0001"), (3e-5, "3e-05"), (None, "-"), (True, "yes"),
])
def test_table_cells_show_counts_whole_and_ratios_with_four_decimals(value, shown):
    assert cell(value) == shown


def test_the_summary_table_has_a_header(run_dir):
    markdown = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "|  |  |" not in markdown
    assert "| item | value |" in markdown
    assert "| optimiser steps |" in markdown
