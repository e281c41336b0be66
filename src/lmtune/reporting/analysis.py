"""The report's figures and error analysis, each built only when the run's files hold what it needs."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix

from lmtune.evaluation.calibration import expected_calibration_error, reliability_bins
from lmtune.evaluation.classification import MATRIX_LIMIT
from lmtune.evaluation.error_analysis import accuracy_by_length, confident_mistakes, confused_pairs
from lmtune.numbers import is_number
from lmtune.reporting import plots
from lmtune.reporting.blocks import cell, figure, section, table, text
from lmtune.reporting.run_files import RunFiles

MAX_TEXT = 300  # characters of an example shown in a table
MAX_ANSWERS = 10


def curve_sections(run: RunFiles, metric: str | None) -> list[dict]:
    losses = [(r["step"], r["loss"]) for r in run.log if "loss" in r and "step" in r]
    evals = [(r["step"], r["eval"]) for r in run.log if isinstance(r.get("eval"), dict) and "step" in r]
    if isinstance(run.metrics.get("validation_before"), dict):
        evals.insert(0, (0, run.metrics["validation_before"]))
    blocks = []
    if len(losses) > 1:
        steps, values = zip(*losses, strict=True)
        blocks.append(figure("loss_curve", "Training loss, averaged over each logging interval",
                             plots.line_plot({"training loss": (steps, values)}, "Training loss", "step", "loss")))
    elif losses:
        blocks.append(_one_point("Training loss", *losses[0]))
    if evals:
        metric = metric if metric in evals[-1][1] else next(
            (k for k, v in evals[-1][1].items() if isinstance(v, int | float) and k != "n"), None)
        points = [(step, e[metric]) for step, e in evals if isinstance(e.get(metric), int | float)]
        if len(points) == 1:
            blocks.append(_one_point(f"Validation {metric}", *points[0]))
        elif points:
            steps, values = zip(*points, strict=True)
            blocks.append(figure("validation_curve", f"Validation {metric} at each evaluation",
                                 plots.line_plot({metric: (steps, values)}, f"Validation {metric}", "step", metric)))
    return [section("Training curves", blocks or [text("No training log (train_log.jsonl) to plot.")])]


def detail_sections(run: RunFiles) -> list[dict]:
    """Every per-class / per-type / per-target breakdown in the metrics, as a table each."""
    split = run.predictions_split
    metrics = run.metrics.get(split) or {}
    blocks = []
    for key, value in metrics.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns = list(dict.fromkeys(k for v in value.values() for k in v))
            blocks.append(table([key.replace("_", " "), *columns],
                                [[name, *[v.get(c) for c in columns]] for name, v in value.items()],
                                caption=f"{key} on {split}"))
    return [section("Breakdown", blocks)] if blocks else []


def classification_sections(run: RunFiles) -> list[dict]:
    records = run.predictions
    if not records or not isinstance(records[0].get("probabilities"), dict) or "gold" not in records[0]:
        return []
    labels = list(records[0]["probabilities"])
    probs = np.array([[r["probabilities"][c] for c in labels] for r in records], dtype=float)
    single = "label" in records[0]
    if single:
        index = {c: i for i, c in enumerate(labels)}
        onehot = np.eye(len(labels))[[index[r["gold"]] for r in records]]
    else:
        onehot = np.array([[c in r["gold"] for c in labels] for r in records], dtype=float)
    split = run.predictions_split
    blocks = []
    if single and len(labels) <= MATRIX_LIMIT:
        matrix = confusion_matrix([r["gold"] for r in records], [r["label"] for r in records], labels=labels)
        blocks.append(figure("confusion_matrix", f"Confusion matrix on {split} (rows: gold, columns: predicted)",
                             plots.confusion_heatmap(matrix, labels)))
    for name, build, caption in (("roc_curve", plots.roc_plot, "ROC curve"),
                                 ("pr_curve", plots.pr_plot, "Precision-recall curve")):
        png = build(onehot, probs, labels)
        if png is not None:
            scope = "" if single and len(labels) == 2 else ", each class against the rest"
            blocks.append(figure(name, f"{caption} on {split}{scope}", png))
    out = [section("Classification", blocks)] if blocks else []
    if single:
        out += [_calibration(records, split), _errors(records, split)]
    return out


def _calibration(records: list[dict], split: str) -> dict:
    confidence = [r["score"] for r in records]
    correct = [r["label"] == r["gold"] for r in records]
    ece = expected_calibration_error(confidence, correct)
    return section("Calibration", [
        text(f"Expected calibration error (10 equal-width confidence bins) on {split}: {ece:.4f}. It is the "
             "average gap between how confident the model is and how often it is right; 0 is perfect."),
        figure("reliability_diagram", "Reliability diagram: accuracy against confidence of the predicted class",
               plots.reliability_plot(reliability_bins(confidence, correct), ece))])


def _errors(records: list[dict], split: str) -> dict:
    mistakes = confident_mistakes(records)
    pairs = confused_pairs(records)
    lengths = accuracy_by_length(records)
    blocks = [table(["text", "gold", "predicted", "confidence"],
                    [[_short(m["text"]), m["gold"], m["predicted"], m["confidence"]] for m in mistakes],
                    caption=f"The most confident mistakes on {split}") if mistakes
              else text(f"No mistakes on {split}.")]
    if pairs:
        blocks.append(table(["gold", "predicted as", "count", "share of gold class"],
                            [[p["gold"], p["predicted"], p["count"], p["share_of_gold"]] for p in pairs],
                            caption="The most confused class pairs"))
    blocks.append(table(["words", "examples", "accuracy"], [[b["words"], b["n"], b["accuracy"]] for b in lengths],
                        caption="Accuracy by input length (word-count quartiles)"))
    return section("Error analysis", blocks)


def regression_sections(run: RunFiles) -> list[dict]:
    pairs = [(r["score"], r["gold"]) for r in run.predictions if is_number(r.get("score")) and is_number(r.get("gold"))]
    if len(pairs) < 2:
        return []
    predicted, gold = np.array(pairs, dtype=float).T
    return [section("Predictions", [figure("scatter", f"Predicted against gold on {run.predictions_split}",
                                           plots.scatter_plot(predicted, gold))])]


def _short(value) -> str:
    value = str(value)
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "..."


def generation_sections(run: RunFiles) -> list[dict]:
    """Generated answers beside the references (sft), the first MAX_ANSWERS of the evaluated split."""
    records = [r for r in run.predictions if "generated" in r and "reference" in r][:MAX_ANSWERS]
    if not records:
        return []
    scores = [k for k in ("rougeL", "bleu", "exact_match") if k in records[0]]
    rows = [[r["row"], _short(r["prompt"]), _short(r["reference"]), _short(r["generated"]),
             *[r[k] for k in scores]] for r in records]
    return [section("Generated answers", [table(["row", "prompt", "reference", "generated", *scores], rows,
                                                caption=f"Greedy answers on {run.predictions_split}")])]


def _one_point(name: str, step: int, value: float) -> dict:
    """A single measurement is stated, not drawn: a one-point chart shows a dot and suggests a trend."""
    return text(f"{name}: {cell(value)} at step {step} (measured once, so no curve).")
