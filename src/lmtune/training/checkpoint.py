"""Checkpoints a killed run can resume from: written under a temporary name, then renamed into place.

A folder named `step-N` is therefore always complete; a half-written one keeps its `.tmp-` name and is
ignored (and cleaned up) on the next save.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from lmtune.io import write_json

# Tied input/output embeddings (SmolLM2, GPT-2) are stored once and tied again on load; accelerate warns
# about that at every checkpoint although it is exactly what should happen.
logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
_STEP = re.compile(r"^step-(\d+)$")
BEST = "best.safetensors"


def save(accelerator: Accelerator, root: Path, state: dict, keep: int) -> Path:
    # Every process writes its own RNG state into the same temporary folder; only the main one renames it.
    target = root / f"step-{state['step']:07d}"
    tmp = root / f".tmp-{target.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(tmp / "trainer_state.json", state)
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


def load_latest(accelerator: Accelerator, root: Path) -> dict | None:
    found = all_checkpoints(root)
    if not found:
        return None
    accelerator.load_state(str(found[-1]))
    return json.loads((found[-1] / "trainer_state.json").read_text())


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
