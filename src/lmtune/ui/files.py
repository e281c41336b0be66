"""The data files the Data page offers: the bundled demo, files under the folder the UI was started in, and
uploads, which are kept under <runs>/.ui/uploads so that a run's config can name them like any file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import HTTPException, Request

from lmtune.runs import DEMO_DATA

EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt", ".conll")
SKIPPED = {".git", ".venv", "venv", "node_modules", "__pycache__", "site-packages"}
MAX_DEPTH = 3  # folders below the data root that are searched: a home folder must not take minutes
MAX_FILES = 500
MAX_UPLOAD_BYTES = 200_000_000


def data_files(root: Path, runs: Path) -> list[dict]:
    found = [{"path": str(DEMO_DATA), "label": "demo reviews (bundled)", "bytes": DEMO_DATA.stat().st_size}]
    uploads = runs / ".ui" / "uploads"
    found += [_entry(p, uploads, "upload: ") for p in sorted(uploads.glob("*")) if p.is_file()]
    for folder, subfolders, names in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        subfolders[:] = [] if depth >= MAX_DEPTH else sorted(
            d for d in subfolders if d not in SKIPPED and not d.startswith(".") and Path(folder, d) != runs)
        found += [_entry(Path(folder, n), root) for n in sorted(names) if n.endswith(EXTENSIONS)]
        if len(found) >= MAX_FILES:
            break
    return found[:MAX_FILES]


def _entry(path: Path, base: Path, prefix: str = "") -> dict:
    return {"path": str(path), "label": prefix + str(path.relative_to(base)), "bytes": path.stat().st_size}


async def save_upload(request: Request, runs: Path, filename: str) -> Path:
    """The request body streamed to <runs>/.ui/uploads/<name> (a new name if taken), at most MAX_UPLOAD_BYTES;
    a failed upload leaves no file."""
    name = re.sub(r"[^\w.\-]", "_", Path(filename).name).lstrip(".")
    if not name.endswith(EXTENSIONS):
        raise HTTPException(415, f"upload a data file ({', '.join(EXTENSIONS)}), not {filename!r}")
    folder = runs / ".ui" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / name, 1
    while target.exists():
        n += 1
        target = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    partial, size = target.with_name(f".{target.name}.part"), 0
    try:
        with partial.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise HTTPException(413, f"uploads are limited to {MAX_UPLOAD_BYTES // 1_000_000} MB; give "
                                             "a bigger file's path instead (lmtune ui --data-root FOLDER)")
                out.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
