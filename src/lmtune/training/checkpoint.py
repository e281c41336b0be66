"""Checkpoints a killed run can resume from: written under a temporary name, then renamed into place.

A folder named `step-N` is therefore always complete; a half-written one keeps its `.tmp-` name and is
ignored (and cleaned up) on the next save.

Everything in a checkpoint is data: tensors in safetensors, the rest in JSON. Accelerate's `save_state` pickles
the scheduler and the RNG states, and unpickling runs whatever code a planted file names, so a run folder
someone handed you could run commands on `--resume`. Nothing here is ever unpickled. The format holds what one
process (or DDP's identical replicas) trains; sharded engines (FSDP, DeepSpeed) would need their own.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lmtune.errors import ConfigError
from lmtune.io import write_json

# Tied input/output embeddings (SmolLM2, GPT-2) are stored once and tied again on load; accelerate warns
# about that at every checkpoint although it is exactly what should happen.
logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
_STEP = re.compile(r"^step-(\d+)$")
BEST = "best.safetensors"
WEIGHTS, OPTIMIZER, STATE = "weights.safetensors", "optimizer", "trainer_state.json"


def save(accelerator: Accelerator, root: Path, state: dict, keep: int, model: torch.nn.Module,
         optimizer: torch.optim.Optimizer, scheduler) -> Path:
    # Every process writes its own RNG state into the same temporary folder; only the main one renames it.
    target = root / f"step-{state['step']:07d}"
    tmp = root / f".tmp-{target.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _save_rng(tmp / f"rng-{accelerator.process_index}.safetensors")
    if accelerator.is_main_process:
        save_trainable(accelerator.unwrap_model(model), tmp / WEIGHTS)
        _save_optimizer(optimizer.state_dict(), tmp / OPTIMIZER)
        write_json(tmp / "scheduler.json", scheduler.state_dict())
        if accelerator.scaler is not None:
            write_json(tmp / "scaler.json", accelerator.scaler.state_dict())  # write_json turns tensors into numbers
        write_json(tmp / STATE, state)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
        for old in all_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return target


def all_checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP.match(p.name)]
    return sorted(found, key=lambda p: int(_STEP.match(p.name).group(1)))


def load_latest(accelerator: Accelerator, root: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler) -> tuple[dict, Path] | None:
    """The newest checkpoint's trainer state and folder, its weights, optimizer and scheduler restored. The RNG
    states are restored apart (`restore_rng`), at the moment the uninterrupted run was in when it saved them."""
    found = all_checkpoints(root)
    if not found:
        return None
    path = found[-1]
    if not (path / WEIGHTS).is_file():
        raise ConfigError(f"{path} is a checkpoint in the pickle format of lmtune before 0.2, which is never "
                          "loaded: unpickling runs whatever code the file names. Train the run again without "
                          "--resume (or under a new --name)")
    try:
        load_trainable(accelerator.unwrap_model(model), path / WEIGHTS)
        optimizer.load_state_dict(_load_optimizer(path / OPTIMIZER))
        scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))
        if accelerator.scaler is not None and (path / "scaler.json").is_file():
            accelerator.scaler.load_state_dict(json.loads((path / "scaler.json").read_text()))
        return json.loads((path / STATE).read_text()), path
    except (OSError, SafetensorError, json.JSONDecodeError, KeyError) as e:
        raise ConfigError(f"checkpoint {path} is damaged and cannot be resumed ({e}); delete that folder to "
                          "resume from the one before it, if any") from None


def save_trainable(model: torch.nn.Module, path: Path) -> None:
    """Only trainable tensors change during training, so only they are kept for best-model restore."""
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


def load_trainable(model: torch.nn.Module, path: Path) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in load_file(str(path)).items():
            params[name].copy_(value)


def _save_optimizer(state: dict, stem: Path) -> None:
    """Tensors (moments, step counts) to safetensors, everything else (hyper-parameters, param ids) to JSON."""
    tensors, plain = {}, {}
    for param, entries in state["state"].items():
        plain[str(param)] = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(param)][key] = value
    save_file(tensors, str(stem.with_suffix(".safetensors")))
    write_json(stem.with_suffix(".json"), {"param_groups": state["param_groups"], "plain": plain})


def _load_optimizer(stem: Path) -> dict:
    meta = json.loads(stem.with_suffix(".json").read_text())
    state = {int(param): dict(values) for param, values in meta["plain"].items()}
    for name, value in load_file(str(stem.with_suffix(".safetensors"))).items():
        param, key = name.split(".", 1)
        state[int(param)][key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _save_rng(path: Path) -> None:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    version, words, python_gauss = random.getstate()
    meta = {"numpy": [kind, int(position), int(has_gauss), float(gauss)],
            "python": [version, list(words), python_gauss]}
    save_file(tensors, str(path), metadata={"json": json.dumps(meta)})


def restore_rng(checkpoint: Path, process: int) -> None:
    with safe_open(str(checkpoint / f"rng-{process}.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["json"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(torch.cuda.device_count()) if f"cuda.{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    kind, position, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), position, has_gauss, gauss))
    version, words, python_gauss = meta["python"]
    random.setstate((version, tuple(words), python_gauss))
