"""Self-training (`data.unlabelled` on a classification run): learn from texts nobody labelled.

Round 0 trains on the labelled rows. Each later round predicts the unlabelled rows with the previous round's
model, keeps those whose predicted probability reaches task.pseudo_label_threshold with the predicted label
(a pseudo-label), and trains afresh from the pretrained model on the labelled rows plus those. Every round trains
runs/<name>/round-<r> on the same validation and test rows; the run kept is the round with the best validation
score, so the test score stays a held-out verdict. Each round's pseudo-label count and scores go into
self_training.json / .md / .html beside the rounds, the printed log, and the kept run's metrics and report.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from lmtune.config import Config
from lmtune.data.stream import iter_chunks
from lmtune.errors import ConfigError
from lmtune.io import write_json, write_text
from lmtune.recipe import Run, selection_metric, train
from lmtune.reporting.blocks import section, text
from lmtune.reporting.render import render_html, render_markdown
from lmtune.reporting.report import write_reports
from lmtune.reporting.workflows import rounds_table
from lmtune.runs import as_config, free_run_dir, with_demo_data
from lmtune.tasks import checked_config, saved_task
from lmtune.tasks.classification import Classification
from lmtune.trained.predictor import Predictor


def self_train(config: Config | dict | str | Path | None = None) -> Run:
    """Train round 0 and task.self_training_rounds pseudo-labelled rounds; returns the best round's run."""
    cfg = checked_config(with_demo_data(as_config(config)))
    if cfg.task.name != Classification.name or not cfg.data.unlabelled:
        raise ConfigError("self-training takes a classification task with data.unlabelled (a file of texts)")
    cfg = free_run_dir(cfg)
    base = cfg.model_copy(update={"data": cfg.data.model_copy(update={"unlabelled": None})})
    splits, _ = Classification(cfg.task).load(base)  # one split of the labelled rows for every round
    unlabelled = read_unlabelled(cfg, after=int(splits["train"].index.max()))
    rounds: list[dict] = []
    run = None
    for number in range(cfg.task.self_training_rounds + 1):
        added = _pseudo_labelled(run, unlabelled, cfg.task.pseudo_label_threshold) if run else unlabelled.iloc[:0]
        member = base.model_copy(update={"name": f"round-{number}", "output_dir": str(cfg.run_dir)})
        run = train(member, splits={**splits, "train": pd.concat([splits["train"], added])})
        goal = selection_metric(cfg.train.metric, saved_task(run.model_dir))
        rounds.append(_round(number, run, added, goal["metric"]))
        print(f"self-training round {number}: {len(added):,} pseudo-labelled rows, validation {goal['metric']} "
              f"{rounds[-1]['validation']:.4f}")
    sign = 1 if goal["higher_is_better"] else -1
    best = max(rounds, key=lambda r: sign * r["validation"])  # the first of equals: fewer pseudo-labels
    found = {"metric": goal["metric"], "kept": best["round"], "threshold": cfg.task.pseudo_label_threshold,
             "rounds": rounds}
    write_results(cfg.run_dir, found)
    kept = Path(best["run"])
    metrics = {**json.loads((kept / "metrics.json").read_text(encoding="utf-8")), "self_training": found}
    write_json(kept / "metrics.json", metrics)
    write_reports(kept)
    return Run(kept, metrics, run.config.model_copy(update={"name": kept.name}))


def read_unlabelled(cfg: Config, after: int = 0) -> pd.DataFrame:
    """The unlabelled file's texts in the task's columns (text, text_pair), rows numbered from after + 1, so that
    they join the labelled rows (numbered up to `after`) without sharing a number."""
    chunks = iter_chunks(cfg.data.unlabelled, text_column=cfg.data.text_column,
                         text_pair_column=cfg.data.text_pair_column)
    rows = pd.concat(list(chunks))
    rows.index = rows.index + after
    return rows[[c for c in ("text", "text_pair") if c in rows]]


def _pseudo_labelled(run: Run, unlabelled: pd.DataFrame, threshold: float) -> pd.DataFrame:
    records = Predictor(run.path).predict(unlabelled)
    keep = [i for i, r in enumerate(records) if r["score"] >= threshold]
    added = unlabelled.iloc[keep].assign(label=[records[i]["label"] for i in keep])
    return added


def _round(number: int, run: Run, added: pd.DataFrame, metric: str) -> dict:
    return {"round": number, "run": str(run.path), "pseudo_labels": len(added),
            "pseudo_label_classes": dict(Counter(added["label"])) if len(added) else {},
            "validation": run.metrics["validation"][metric], "test": (run.metrics.get("test") or {}).get(metric)}


def write_results(folder: Path, found: dict) -> None:
    """self_training.json, .md and .html beside the rounds."""
    write_json(folder / "self_training.json", found)
    context = {"title": f"Self-training: {folder.name}", "figures": ".",
               "subtitle": f"round {found['kept']} kept (best validation {found['metric']})",
               "sections": [section("Rounds", [rounds_table(found["rounds"], found["metric"]),
                                               text("Round 0 trains on the labelled rows alone.")])]}
    write_text(folder / "self_training.md", render_markdown(context))
    write_text(folder / "self_training.html", render_html(context))
