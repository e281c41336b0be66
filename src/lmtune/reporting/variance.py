"""Mean ± std over repeated runs (k-fold cross-validation, several seeds): the table and its report files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmtune.io import write_text
from lmtune.numbers import is_number
from lmtune.reporting.blocks import section, table, text
from lmtune.reporting.render import render_html, render_markdown


def summarise(per_run: list[dict]) -> dict[str, dict]:
    """Mean and sample std (ddof=1: the runs are a sample of the ways to split or seed) of each scalar metric
    that every run reported; std is 0 for a single run."""
    keys = [k for k in per_run[0] if all(is_number(run.get(k)) for run in per_run)]
    return {k: {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
            for k in keys for values in [[run[k] for run in per_run]]}


def variance_table(names: list[str], per_run: list[dict], summary: dict[str, dict]) -> dict:
    """A metric per row: mean ± std, then each run's value."""
    rows = [[key, f"{stat['mean']:.4f} ± {stat['std']:.4f}", *[f"{run[key]:.4f}" for run in per_run]]
            for key, stat in summary.items()]
    return table(["metric", "mean ± std", *names], rows)


def write_variance_report(folder: Path, stem: str, title: str, subtitle: str, names: list[str],
                          per_run: list[dict], summary: dict[str, dict]) -> None:
    """<stem>.md and <stem>.html in `folder`."""
    note = text("std is the sample standard deviation (n - 1) across the runs.")
    context = {"title": title, "subtitle": subtitle, "figures": ".",
               "sections": [section("Metrics", [variance_table(names, per_run, summary), note])]}
    write_text(folder / f"{stem}.md", render_markdown(context))
    write_text(folder / f"{stem}.html", render_html(context))
