"""`lmtune reproduce RUN`: train again from a run's saved config and record, and compare the metrics.

It refuses when a data file's sha256 differs from the record (the result could not be expected to match), and
says which library versions differ (those can change results within floating-point noise)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmtune.config import Config, load_yaml
from lmtune.errors import UserError
from lmtune.numbers import is_number
from lmtune.recipe import Run, train
from lmtune.record import data_digest, environment, model_digest
from lmtune.trained.folder import model_dir


@dataclass
class Reproduction:
    run: Run
    rows: list[tuple[str, float, float | None]]  # metric, original, reproduced
    differences: list[str]  # what differs from the original run's record (library versions, base model)

    @property
    def identical(self) -> bool:
        return all(new == old for _, old, new in self.rows)


def reproduce(run_path: str | Path, output_dir: str | None = None) -> Reproduction:
    path = Path(run_path)
    record = json.loads((model_dir(path) / "lmtune.json").read_text(encoding="utf-8")).get("record")
    config_file = path / "config.yaml"
    if not record or not config_file.is_file():
        raise UserError(f"{path} has no reproducibility record (trained by an lmtune before 0.2, or not a run "
                        "folder): nothing to reproduce from")
    for split, data in record["data"].items():
        file = Path(data["path"])
        if not file.exists():
            raise UserError(f"the {split} data {file} is gone; reproduce needs the files the run trained on")
        digest = data_digest(file)
        if digest != data["sha256"]:
            raise UserError(f"the {split} data {file} changed since the run (sha256 {digest}, recorded "
                            f"{data['sha256']}): a run on other data cannot reproduce this one")
    original = Config.model_validate(load_yaml(config_file))
    cfg = original.model_copy(update={"name": f"{original.name}-reproduced",
                                      "output_dir": output_dir or original.output_dir})
    differences = _differences(record, cfg)
    run = train(cfg)
    metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    now = _flat(run.metrics)
    rows = [(key, value, now.get(key)) for key, value in _flat(metrics).items()]
    return Reproduction(run, rows, differences)


def _differences(record: dict, cfg: Config) -> list[str]:
    """What differs from the record apart from the data (checked already): software and base model."""
    now = environment()
    out = [f"{name} {record['libraries'].get(name)} then, {v} now" for name, v in now["libraries"].items()
           if record["libraries"].get(name) != v]
    then, current = (r["lmtune_commit"] or r["lmtune"] for r in (record, now))
    if then != current:
        out.append(f"lmtune {then} then, {current} now")
    if record["base_model"]["sha256"] != model_digest(cfg.model.name):
        out.append(f"base model {cfg.model.name}'s files differ from the run's")
    return out


def _flat(metrics: dict) -> dict[str, float]:
    """The scores that a rerun must match: every number under validation, test and the baselines."""
    out = {}
    for split in ("validation", "test", "baselines"):
        for key, value in (metrics.get(split) or {}).items():
            if is_number(value) and key not in ("seconds", "samples_per_s"):
                out[f"{split}.{key}"] = value
            elif isinstance(value, dict):
                out |= {f"{split}.{key}.{k}": v for k, v in value.items() if is_number(v)}
    return out
