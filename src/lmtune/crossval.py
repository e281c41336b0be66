"""K-fold cross-validation pieces that `recipe.cross_validate` strings together: seeded folds, per-fold data
reports, the mean ± std summary and the files it writes (cv.json, cv.md, oof_predictions.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from lmtune.config import Config
from lmtune.data import quality_report
from lmtune.data.readers import file_label
from lmtune.errors import ConfigError, DataError
from lmtune.io import write_json, write_jsonl, write_text
from lmtune.numbers import is_number


def make_folds(rows: pd.DataFrame, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train positions, held-out positions) of each fold, the same for the same seed.

    Class labels (strings) are stratified; multi-label lists and regression numbers have no single class
    to stratify on, so their folds are plain shuffled KFold.
    """
    if not 2 <= k <= len(rows):
        raise ConfigError(f"cross-validation needs between 2 and {len(rows)} folds (the training rows), got {k}")
    labels = rows["label"].tolist()
    stratify = all(isinstance(v, str) for v in labels)
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=k, shuffle=True, random_state=seed)
    try:
        return list(splitter.split(np.zeros(len(rows)), labels if stratify else None))
    except ValueError as err:  # sklearn's way of saying every class has fewer than k rows
        raise DataError(f"cannot make {k} stratified folds: {err}", file=file_label(rows)) from None


def fold_report(task, cfg: Config, splits: dict[str, pd.DataFrame]) -> dict:
    """The data report of splits made outside the task: the quality report load() would have written, plus
    what the task learns from the fold's training rows (labels, target scaling)."""
    if not hasattr(task, "learn"):
        raise ConfigError(f"task {task.name!r} cannot train on given splits (cross-validation supports "
                          "classification and regression)")
    texts = [c for c in ("text", "text_pair") if c in splits["train"]]
    report = quality_report(splits, texts)
    report["sources"] = {name: file_label(rows) for name, rows in splits.items()}
    return {**report, **task.learn(cfg, splits)}


def summarise(per_fold: list[dict]) -> dict[str, dict]:
    """Mean and sample std (ddof=1: the folds are a sample of the ways to split) of each scalar metric that
    every fold reported."""
    keys = [k for k in per_fold[0] if all(is_number(fold.get(k)) for fold in per_fold)]
    return {k: {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))}
            for k in keys for values in [[fold[k] for fold in per_fold]]}


def scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if is_number(v)}


def write_results(run_dir: Path, result: dict, oof: list[dict]) -> None:
    write_json(run_dir / "cv.json", result)
    write_jsonl(run_dir / "oof_predictions.jsonl", sorted(oof, key=lambda r: r["row"]))
    runs = [f"fold-{f['fold']}" for f in result["per_fold"]]
    lines = [f"# Cross-validation: {result['name']} ({result['folds']} folds, {result['rows']} rows)", "",
             "| metric | mean ± std | " + " | ".join(runs) + " |", "|---|---|" + "---|" * len(runs)]
    for key, stat in result["summary"].items():
        cells = [f"{f['metrics'][key]:.4f}" for f in result["per_fold"]]
        lines.append(f"| {key} | {stat['mean']:.4f} ± {stat['std']:.4f} | " + " | ".join(cells) + " |")
    write_text(run_dir / "cv.md", "\n".join(lines) + "\n")


def read_predictions(run_dir: Path, fold: int) -> list[dict]:
    """A fold run's validation predictions, tagged with the fold that held those rows out."""
    text = (run_dir / "predictions.jsonl").read_text(encoding="utf-8")
    return [{"fold": fold, **json.loads(line)} for line in text.splitlines() if line.strip()]
