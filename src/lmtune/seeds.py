"""Variance across seeds (`lmtune train --seeds 1,2,3`): one run per seed, every metric as mean ± std.

A single fine-tuning run's score moves with the seed (head initialisation, data order, dropout) by more than many
differences people report between models. Each seed trains runs/<name>/seed-<s> (with `folds`, a k-fold
cross-validation there, scored by its fold means); runs/<name>/seeds.json, seeds.md and seeds.html hold each seed's
metrics and their mean ± sample std, and `lmtune compare` ranks the group by its mean.
"""

from __future__ import annotations

from pathlib import Path

from lmtune.config import Config
from lmtune.errors import ConfigError
from lmtune.io import write_json
from lmtune.numbers import is_number
from lmtune.recipe import cross_validate, train
from lmtune.reporting.summary import flat_metrics
from lmtune.reporting.variance import summarise, write_variance_report
from lmtune.runs import as_config, free_run_dir, with_demo_data

SPLITS = ("validation", "test")


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas, e.g. 1,2,3 (got {text!r})") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs at least two different seeds (got {text!r})")
    return seeds


def train_seeds(config: Config | dict | str | Path | None, seeds: list[int], folds: int | None = None) -> dict:
    """Train once per seed (cross-validate with `folds`); returns what seeds.json holds."""
    cfg = free_run_dir(with_demo_data(as_config(config)))
    per_seed = []
    for seed in seeds:
        member = cfg.model_copy(update={"name": f"seed-{seed}", "output_dir": str(cfg.run_dir),
                                        "train": cfg.train.model_copy(update={"seed": seed})})
        if folds:
            result = cross_validate(member, folds=folds)
            metrics = {f"validation.{k}": v["mean"] for k, v in result["summary"].items()}
            path, info = member.run_dir, result
        else:
            run = train(member)
            metrics = {f"{split}.{k}": v for split in SPLITS
                       for k, v in flat_metrics(run.metrics.get(split) or {}).items() if is_number(v)}
            path, info = run.path, run.metrics
        per_seed.append({"seed": seed, "run": str(path), "metrics": metrics})
    task, model, method = info["task"], info["model"], info.get("method", cfg.method.name)
    result = {"name": cfg.name, "task": task, "model": model, "method": method, "seeds": seeds, "folds": folds,
              "per_seed": per_seed, "summary": summarise([s["metrics"] for s in per_seed])}
    write_json(cfg.run_dir / "seeds.json", result)
    what = f"{folds}-fold cross-validation means" if folds else "one run each"
    write_variance_report(cfg.run_dir, "seeds", f"{cfg.name}: {len(seeds)} seeds",
                          f"{task} · {model} · {method} · {what}",
                          [f"seed {s}" for s in seeds], [s["metrics"] for s in per_seed], result["summary"])
    return result
