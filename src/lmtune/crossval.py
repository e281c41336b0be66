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
from lmtune.io import write_json, write_jsonl
from lmtune.numbers import is_number
from lmtune.reporting.variance import write_variance_report


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
    what the task learns from the fold's training rows (labels, target scaling); a task that cannot learn from
    given splits says so first."""
    learned = task.learn(cfg, splits)
    texts = [c for c in ("text", "text_pair") if c in splits["train"]]
    report = quality_report(splits, texts)
    report["sources"] = {name: file_label(rows) for name, rows in splits.items()}
    return {**report, **learned}


def scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if is_number(v)}


def write_results(run_dir: Path, result: dict, oof: list[dict]) -> None:
    """cv.json, oof_predictions.jsonl, and cv.md / cv.html: each fold's metrics and their mean ± std."""
    write_json(run_dir / "cv.json", result)
    write_jsonl(run_dir / "oof_predictions.jsonl", sorted(oof, key=lambda r: r["row"]))
    write_variance_report(run_dir, "cv", f"Cross-validation: {result['name']}",
                          f"{result['folds']} folds, {result['rows']} rows",
                          [f"fold-{f['fold']}" for f in result["per_fold"]], [f["metrics"] for f in result["per_fold"]],
                          result["summary"])


def read_predictions(run_dir: Path, fold: int) -> list[dict]:
    """A fold run's validation predictions, tagged with the fold that held those rows out."""
    text = (run_dir / "predictions.jsonl").read_text(encoding="utf-8")
    return [{"fold": fold, **json.loads(line)} for line in text.splitlines() if line.strip()]
