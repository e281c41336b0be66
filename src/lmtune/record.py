"""What a run needs to be run again and give the same result: the command, the library versions, the data's
and the base model's sha256, the seed and the lmtune version (with its git commit when run from a checkout).
Saved in model/lmtune.json; `lmtune reproduce` (lmtune.reproduce) re-runs from it."""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lmtune.config import Config
from lmtune.models.integrity import MANIFEST, hashes, sha256
from lmtune.models.registry import BUILTIN, model_dir
from lmtune.version import __version__

LIBRARIES = ("torch", "transformers", "accelerate", "peft", "datasets", "scikit-learn")


def run_record(cfg: Config) -> dict:
    data = {key: getattr(cfg.data, key) for key in ("train", "validation", "test") if getattr(cfg.data, key)}
    return {"command": shlex.join(sys.argv), **environment(), "seed": cfg.train.seed,
            "data": {key: {"path": path, "sha256": data_digest(Path(path))} for key, path in data.items()},
            "base_model": {"name": cfg.model.name, "sha256": model_digest(cfg.model.name)}}


def environment() -> dict:
    """The software a run ran on: Python, the libraries that decide its numbers, lmtune and its commit."""
    return {"python": platform.python_version(), "libraries": {name: _version(name) for name in LIBRARIES},
            "lmtune": __version__, "lmtune_commit": _commit()}


def data_digest(path: Path) -> str:
    """A file's sha256, or for a folder (a saved `datasets` dataset) the sha256 of its files' names and hashes."""
    return sha256(path) if path.is_file() else _digest(hashes(path))


def model_digest(name: str) -> str | None:
    """One sha256 over the model's files: a built-in's recorded hashes, a local folder's files; None for a hub id,
    whose files lmtune does not see."""
    if name in BUILTIN and (model_dir(name) / MANIFEST).is_file():
        return _digest(json.loads((model_dir(name) / MANIFEST).read_text()))
    path = Path(name)
    return _digest(hashes(path, skip=(MANIFEST,))) if path.is_dir() else None


def _digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _commit() -> str | None:
    """The checkout's commit (+dirty when it has uncommitted changes), if lmtune runs from one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
