"""Where a trained model folder is, and writing one: loadable by plain transformers (and peft for the adapter),
written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from lmtune.config import Config, DataConfig, load_yaml
from lmtune.errors import UserError
from lmtune.io import atomic_dir, write_json
from lmtune.methods import save_weights
from lmtune.models.integrity import hashes


def find_model_dir(model_or_run: str | Path) -> Path | None:
    """The lmtune model folder of a run or model folder; None for anything else (e.g. a base model's folder)."""
    path = Path(model_or_run)
    return next((folder for folder in (path / "model", path) if (folder / "lmtune.json").exists()), None)


def model_dir(model_or_run: str | Path) -> Path:
    found = find_model_dir(model_or_run)
    if found is None:
        raise UserError(f"{model_or_run} is neither an lmtune run folder nor an lmtune model folder (no lmtune.json)")
    return found


def run_data_config(model_or_run: str | Path) -> DataConfig:
    """The data section the run trained with (its text and label columns), or the defaults for a model folder
    that is not inside a run."""
    path = Path(model_or_run)
    for candidate in (path / "config.yaml", path.parent / "config.yaml"):
        if candidate.exists():
            return Config.model_validate(load_yaml(candidate)).data
    return DataConfig()


def save_model(model: torch.nn.Module, tokenizer, task, path: Path, cfg: Config, record: dict | None = None) -> None:
    """The weights as the method saves them (methods.save_weights), the tokenizer, and lmtune.json: the task's
    state and the files' hashes. `record` is what `lmtune reproduce` needs (lmtune.record)."""
    with atomic_dir(path) as tmp:
        save_weights(model, tmp, cfg.method)
        tokenizer.save_pretrained(tmp)
        # The files' hashes, checked whenever the model is loaded (models.integrity).
        write_json(tmp / "lmtune.json", {**task.state(), "base_model": _base_model(cfg.model.name),
                                         "method": cfg.method.name, "files": hashes(tmp), "record": record})


def _base_model(name: str) -> str:
    """A local folder is recorded by absolute path, so an adapter-only model loads from any working folder."""
    return str(Path(name).resolve()) if Path(name).is_dir() else name
