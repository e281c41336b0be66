"""The lines a training run ends with: the verdict against the baseline, the report, what to try next."""

from __future__ import annotations

from pathlib import Path

from lmtune.reporting.verdict import verdict


def _metrics(lift: float, low: float, high: float, **data) -> dict:
    return {
        "model": "minilm", "test": {"accuracy": 0.714}, "data": {"rows": {"train": 320}, **data},
        "baselines": {"tfidf_logreg": {"test": {"accuracy": 0.864}},
                      "lift": {"over": "tfidf_logreg", "metric": "accuracy", "split": "test", "lift": lift,
                               "low": low, "high": high}},
    }


def test_a_model_that_loses_to_the_baseline_says_so_and_what_to_try(tmp_path: Path):
    lines = verdict(_metrics(-0.15, -0.2, -0.1, unknown_token_rate=0.6, reads_best="multilingual-e5-small"),
                    tmp_path)
    assert lines[0] == ("Verdict: fine-tuned minilm LOSES to TF-IDF + logistic regression by -15.0 points of test "
                        "accuracy (95% CI -20.0 to -10.0): 0.714 vs 0.864.")
    assert f"Report: {tmp_path / 'report.html'}" in lines
    assert "Next: try a model that reads this text: --model multilingual-e5-small" in lines
    assert any("more labelled data: 320 training rows" in line for line in lines)
    assert any("--epochs" in line for line in lines)


def test_a_clear_win_and_a_tie(tmp_path: Path):
    assert "beats TF-IDF + logistic regression by +4.5 points" in verdict(_metrics(0.045, 0.036, 0.054), tmp_path)[0]
    tie = verdict(_metrics(0.01, -0.01, 0.03), tmp_path)[0]
    assert "not clearly better" in tie and "-1.0 to +3.0" in tie


def test_tasks_without_baselines_report_their_main_metric(tmp_path: Path):
    metrics = {"model": "minilm", "validation_before": {"f1": 0.05}, "validation": {"exact_match": 0.3, "f1": 0.46}}
    assert verdict(metrics, tmp_path)[0] == ("Verdict: minilm scores f1 0.46 on validation (before fine-tuning: 0.05 "
                                             "on validation).")
    metrics = {"model": "minilm", "validation_before": {"accuracy": 0.5}, "test": {"accuracy": 0.9}}
    assert verdict(metrics, tmp_path)[0] == ("Verdict: minilm scores accuracy 0.9 on test (before fine-tuning: "
                                             "0.5 on validation).")


def test_per_language_scores_and_next_commands(tmp_path: Path):
    (tmp_path / "model").mkdir()
    metrics = {**_metrics(0.05, 0.01, 0.09),
               "by_language": {"Chinese/Japanese": {"rows": 20, "accuracy": 0.9},
                               "Latin-script (English)": {"rows": 20, "accuracy": 0.95}}}
    lines = verdict(metrics, tmp_path)
    assert "  Chinese/Japanese: 20 rows, accuracy 0.900" in lines
    assert f"Next: lmtune predict {tmp_path} -i your.csv -o predictions.csv" in lines
    assert f"Next: lmtune serve {tmp_path}" in lines
