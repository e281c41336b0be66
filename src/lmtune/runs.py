"""Run folders: a new run claims a folder of its own; a resumed one reads back its saved config."""

from __future__ import annotations

from pathlib import Path

from accelerate.utils import broadcast_object_list

from lmtune.config import Config, build_config, load_config, load_yaml
from lmtune.errors import UserError

DEMO_DATA = Path(__file__).parent / "resources" / "reviews.csv"


def as_config(config: Config | dict | str | Path | None) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return build_config(config)
    return load_config(config)


def free_run_dir(cfg: Config) -> Config:
    """A new run never overwrites an old one, nor shares a folder with one started at the same moment: the first
    of runs/name, runs/name-2, ... that this call manages to create (mkdir is atomic and exclusive)."""
    base, n, name = Path(cfg.output_dir), 1, cfg.name
    base.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            (base / name).mkdir()
            return cfg.model_copy(update={"name": name})
        except FileExistsError:
            n += 1
            name = f"{cfg.name}-{n}"


def claimed(cfg: Config, accelerator) -> Config:
    name = [free_run_dir(cfg).name if accelerator.is_main_process else None]
    broadcast_object_list(name)  # the other processes train into the folder the main one created
    return cfg.model_copy(update={"name": name[0]})


def resumed_config(cfg: Config) -> Config:
    """A resumed run keeps its saved config.yaml; only the keys the caller set explicitly override it."""
    saved = cfg.run_dir / "config.yaml"
    if not saved.exists():
        raise UserError(f"nothing to resume in {cfg.run_dir} (no config.yaml); check --name and output_dir")
    given = {**cfg.model_dump(mode="json", exclude_unset=True), "name": cfg.name, "output_dir": cfg.output_dir}
    return build_config(_merged(load_yaml(saved), given))  # the run continues in the folder it was found in


def _merged(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def with_demo_data(cfg: Config) -> Config:
    if cfg.data.train is not None:
        return cfg
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"train": str(DEMO_DATA)})})


