"""The few lines a training run ends with on the console: did fine-tuning pay, where is the report, what next.

The report holds everything; these lines are for the person who reads nothing else, so a model that loses to
TF-IDF + logistic regression says so here, in words, with what to try.
"""

from __future__ import annotations

from pathlib import Path

from lmtune.reporting.summary import UNKNOWN_TOKEN_WARNING, flat_metrics

SMALL_DATA = 1000  # training rows below which more labelled data is the first thing to try


def verdict(metrics: dict, run_dir: Path) -> list[str]:
    """Plain-text lines: the verdict, per-language scores when the data mixes languages, the report, next steps."""
    lines = [_headline(metrics)]
    for script, scores in (metrics.get("by_language") or {}).items():
        lines.append(f"  {script}: {scores['rows']} rows, accuracy {scores['accuracy']:.3f}")
    lines.append(f"Report: {run_dir / 'report.html'}")
    lines += [f"Next: {step}" for step in _next_steps(metrics, run_dir)]
    return lines


def _headline(metrics: dict) -> str:
    model = metrics.get("model", "the model")
    lift = (metrics.get("baselines") or {}).get("lift")
    if lift:
        split, metric = lift["split"], lift["metric"]
        ours = flat_metrics(metrics.get(split) or {}).get(metric)
        theirs = metrics["baselines"]["tfidf_logreg"][split].get(metric)
        points = f"{100 * lift['lift']:+.1f} points of {split} {metric} (95% CI {100 * lift['low']:+.1f} to " \
                 f"{100 * lift['high']:+.1f})"
        scores = f"{ours:.3f} vs {theirs:.3f}" if ours is not None and theirs is not None else ""
        if lift["low"] > 0:
            return f"Verdict: fine-tuned {model} beats TF-IDF + logistic regression by {points}: {scores}."
        if lift["high"] < 0:
            return f"Verdict: fine-tuned {model} LOSES to TF-IDF + logistic regression by {points}: {scores}."
        return f"Verdict: fine-tuned {model} is not clearly better than TF-IDF + logistic regression: {points}, " \
               f"{scores}."
    split = next((s for s in ("test", "validation") if isinstance(metrics.get(s), dict)), None)
    if split is None:
        return f"Verdict: {model} trained; no held-out split was scored."
    main = _main_metric(metrics, split)
    before = flat_metrics(metrics.get("validation_before") or {}).get(main[0]) if main else None
    if main is None:
        return f"Verdict: {model} trained; see the {split} metrics above."
    change = f" (before fine-tuning: {before:.4g} on validation)" if before is not None else ""
    return f"Verdict: {model} scores {main[0]} {main[1]:.4g} on {split}{change}."


def _main_metric(metrics: dict, split: str) -> tuple[str, float] | None:
    flat = flat_metrics(metrics[split])
    preferred = ("accuracy", "f1", "exact_match", "pearson", "rougeL", "perplexity", "loss")
    for key in (*preferred, *flat):
        value = flat.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return key, float(value)
    return None


def _next_steps(metrics: dict, run_dir: Path) -> list[str]:
    data = metrics.get("data") or {}
    steps = []
    better = data.get("reads_best")
    if data.get("unknown_token_rate", 0) > UNKNOWN_TOKEN_WARNING and better and better != metrics.get("model"):
        steps.append(f"try a model that reads this text: --model {better}")
    lift = (metrics.get("baselines") or {}).get("lift")
    if lift and lift["low"] <= 0:
        steps.append("train longer (--epochs 5) or try another learning rate (--lr 5e-5 / 2e-4)")
    train_rows = (data.get("rows") or {}).get("train")
    if isinstance(train_rows, int) and train_rows < SMALL_DATA:
        steps.append(f"more labelled data: {train_rows} training rows is little for fine-tuning")
    if (run_dir / "model").exists():
        steps += [f"lmtune predict {run_dir} -i your.csv -o predictions.csv", f"lmtune serve {run_dir}"]
    return steps
