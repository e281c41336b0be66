"""Finished runs side by side (`lmtune compare`): which model, method or setting did best on one task.

One row per run, best first by one metric (the task's main metric unless told otherwise), with what the run cost
(trainable parameters, training seconds) and the baselines it was scored against. Scores only compare when the
runs did the same task, so runs of different tasks are refused; runs evaluated on different rows are compared
but flagged, since their scores differ by sample as well as by model. A multi-seed folder (`--seeds`, seeds.json)
is one row: the mean over its seeds, ranked by that mean and shown with its sample std.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmtune.errors import UserError
from lmtune.io import write_json, write_text
from lmtune.numbers import higher_is_better, is_number
from lmtune.reporting.blocks import section, table, text, warning
from lmtune.reporting.render import render_markdown
from lmtune.reporting.run_files import RunFiles, read_run
from lmtune.reporting.summary import BASELINE_NAMES, flat_metrics, main_metric

SPLITS = ("validation", "test")


def compare_runs(paths: list[Path], metric: str | None = None) -> dict:
    """{"task", "metric", "higher_is_better", "ranked_by" (split), "runs": rows best first, "warnings"}.

    `metric` is any scalar a run's metrics hold, nested ones as 'group.key' (sft's generated.rouge1); names with
    loss/perplexity/mse/mae/error/ece rank lower-is-better, as in training's best-checkpoint choice.
    """
    if not paths:
        raise UserError("compare needs at least one run folder")
    entries = [read_group(p) if (Path(p) / GROUP_FILE).exists() else read_run(p) for p in paths]
    runs = [e.first if isinstance(e, SeedGroup) else e for e in entries]  # what a group's runs all share
    task = _one_task(runs)
    name = metric or _main_metric(runs)
    higher = higher_is_better(name)
    # Test is the held-out verdict; when any run lacks it, validation is the split all of them share.
    split = "test" if all(isinstance(r.metrics.get("test"), dict) for r in runs) else "validation"
    rows = [e.row(name) if isinstance(e, SeedGroup) else _row(e, name, split) for e in entries]
    if all(row[split] is None for row in rows):
        raise UserError(f"no run has a scalar {split} metric {name!r}; pick another with --metric")
    return {"task": task, "metric": name, "higher_is_better": higher, "ranked_by": split,
            "runs": _ranked(rows, split, higher), "warnings": _warnings(runs, split)}


def comparison_table(result: dict) -> dict:
    """The comparison as a report table (cells already text), for Markdown and the terminal alike."""
    metric, split = result["metric"], result["ranked_by"]
    baselines = [b for b in BASELINE_NAMES if any(b in row["baselines"] for row in result["runs"])]
    columns = ["rank", "run", "task", "model", "method", "trainable params", "train seconds",
               *[f"{s} {metric}" for s in SPLITS], *[f"{BASELINE_NAMES[b]} ({split})" for b in baselines]]
    rows = [[row["rank"], row["run"], row["task"], row["model"], row["method"], row["trainable_params"],
             row["train_seconds"], *[_score(row, s) for s in SPLITS], *[row["baselines"].get(b) for b in baselines]]
            for row in result["runs"]]
    return table(columns, rows)


def title(result: dict) -> str:
    direction = "higher" if result["higher_is_better"] else "lower"
    return (f"{len(result['runs'])} {result['task']} runs ranked by {result['ranked_by']} {result['metric']} "
            f"({direction} is better)")


def write_comparison(result: dict, output: Path | None) -> str:
    """The comparison as Markdown; with `output`, also written to output.md, and the result to output.json."""
    blocks = [comparison_table(result), *[warning(w) for w in result["warnings"]]]
    if any(row["baselines"] for row in result["runs"]):
        blocks.append(text(f"Baselines are fitted on each run's own training split and scored on its "
                           f"{result['ranked_by']} split with the same metric."))
    markdown = render_markdown({"title": "Run comparison", "subtitle": title(result),
                                "sections": [section("Runs", blocks)]})
    if output is not None:
        write_text(output.with_suffix(".md"), markdown)
        write_json(output.with_suffix(".json"), result)
    return markdown


GROUP_FILE = "seeds.json"


@dataclass
class SeedGroup:
    """A `--seeds` folder: seeds.json, and the first seed's run (or its first fold, for cross-validated seeds)."""

    path: Path
    result: dict
    first: RunFiles
    seconds: float | None  # mean training seconds of a seed's run (None for cross-validated seeds)

    def row(self, metric: str) -> dict:
        stats = {s: self.result["summary"].get(f"{s}.{metric}") for s in SPLITS}
        return {"run": str(self.path), "task": self.result["task"], "model": self.result["model"],
                "method": self.result["method"], "trainable_params": (self.first.metrics.get("params") or {}).get(
                    "trainable"), "train_seconds": self.seconds, "baselines": {},
                **{s: stat["mean"] if stat else None for s, stat in stats.items()},
                **{f"{s}_std": stat["std"] for s, stat in stats.items() if stat}}


def read_group(path: str | Path) -> SeedGroup:
    path = Path(path)
    result = json.loads((path / GROUP_FILE).read_text(encoding="utf-8"))
    first = Path(result["per_seed"][0]["run"])
    return SeedGroup(path, result, read_run(first / "fold-1" if result.get("folds") else first),
                     None if result.get("folds") else _mean_seconds([Path(s["run"]) for s in result["per_seed"]]))


def _mean_seconds(runs: list[Path]) -> float | None:
    seconds = [(json.loads((run / "metrics.json").read_text(encoding="utf-8")).get("train") or {}).get("seconds")
               for run in runs if (run / "metrics.json").exists()]
    return round(sum(seconds) / len(seconds), 2) if seconds and all(is_number(s) for s in seconds) else None


def _score(row: dict, split: str):
    std = row.get(f"{split}_std")
    return row[split] if std is None else f"{row[split]:.4f} ± {std:.4f}"


def _one_task(runs: list[RunFiles]) -> str:
    tasks = {run.task for run in runs}
    if len(tasks) > 1:
        named = ", ".join(f"{run.path} ({run.task or 'unknown task'})" for run in runs)
        raise UserError(f"runs of different tasks cannot be compared: {named}")
    return tasks.pop()


def _main_metric(runs: list[RunFiles]) -> str:
    for run in runs:
        name = main_metric(run)
        if name:
            return name
    raise UserError("none of these runs names its main metric (no model/lmtune.json); choose one with --metric")


def _row(run: RunFiles, metric: str, split: str) -> dict:
    m = run.metrics
    baselines = m.get("baselines") or {}
    scored = {b: _scalar(flat_metrics(baselines[b].get(split) or {}).get(metric))
              for b in BASELINE_NAMES if isinstance(baselines.get(b), dict)}
    return {"run": str(run.path), "task": run.task,
            "model": m.get("model") or run.section("model").get("name"),
            "method": m.get("method") or run.section("method").get("name"),
            "trainable_params": (m.get("params") or {}).get("trainable"),
            "train_seconds": (m.get("train") or {}).get("seconds"),
            **{s: _scalar(flat_metrics(m.get(s) or {}).get(metric)) for s in SPLITS},
            "baselines": {b: v for b, v in scored.items() if v is not None}}


def _ranked(rows: list[dict], split: str, higher: bool) -> list[dict]:
    """Best first; equal scores share a rank (1, 1, 3); runs without the metric come last, unranked."""
    def better(a: float, b: float) -> bool:
        return a > b if higher else a < b

    scores = [row[split] for row in rows if row[split] is not None]
    for row in rows:
        value = row[split]
        row["rank"] = None if value is None else 1 + sum(better(s, value) for s in scores)
    # sorted() is stable: tied runs keep the order they were given in
    return sorted(rows, key=lambda row: row["rank"] if row["rank"] is not None else len(rows) + 1)


def _warnings(runs: list[RunFiles], split: str) -> list[str]:
    seen = {str(run.path): _evaluated_on(run, split) for run in runs}
    if len(set(seen.values())) <= 1:
        return []
    where = "; ".join(f"{path}: {desc}" for path, desc in seen.items())
    return [f"The runs were scored on different {split} rows ({where}): part of each difference is the sample, "
            "not the model."]


def _evaluated_on(run: RunFiles, split: str) -> str:
    data = run.metrics.get("data") or {}
    source = str((data.get("sources") or {}).get(split, "?"))
    rows = (data.get("rows") or {}).get(split, "?")
    # A split carved off the training file is decided by the seed as well as the file.
    seed = f", seed {run.section('train').get('seed')}" if source.startswith("split of") else ""
    return f"{source}, {rows} rows{seed}"


def _scalar(value) -> float | int | None:
    return value if is_number(value) else None
