"""Tokenised splits kept on disk: a run over the same rows with the same tokenizer and settings (a re-run, a
tuning trial, a resumed run, a cross-validation fold seen before) loads its features instead of encoding again.

A file is named by a sha256 of everything that decides the features: the rows (index, cells, column names and
dtypes), the tokenizer (its whole definition and Python-side settings), the task (name, saved state, settings),
the DataConfig, this module's FORMAT, lmtune's version and its source code. Files are Arrow IPC (Feather v2,
lz4): data only, so reading one runs no code, as unpickling would. Features that Arrow would not give back
exactly are not cached.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import tempfile
import warnings
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
from pyarrow import feather

from lmtune.config import DataConfig
from lmtune.io import atomic_file, lmtune_home
from lmtune.version import __version__

FORMAT = 2  # raise it whenever the file layout or what the key covers changes
# The folder keeps its most recently used files within 2 GiB: SST-2's 60k training sentences take 3.2 MB.
MAX_BYTES = 2 * 1024**3
METADATA = b"lmtune"  # schema metadata key of what encoding gave besides the features (counts, warnings)


def cache_dir(data: DataConfig) -> Path | None:
    """$LMTUNE_TOKEN_CACHE, else $LMTUNE_HOME/tokenized (~/.cache/lmtune/tokenized); None when
    data.cache_tokenized is off."""
    if not data.cache_tokenized:
        return None
    env = os.environ.get("LMTUNE_TOKEN_CACHE")
    return Path(env).expanduser() if env else lmtune_home() / "tokenized"


class Encoded(NamedTuple):
    features: list[dict]
    from_cache: bool
    counts: dict[str, int]  # what fitting the rows into max_length did to them (Task.encode_counted)


def cached_encode(task, rows: pd.DataFrame, tokenizer, data: DataConfig, folder: Path | None) -> Encoded:
    """`task.encode_counted(rows, tokenizer, data)` and whether it came from the cache in `folder` (None: no
    cache)."""
    if folder is None:
        features, counts = task.encode_counted(rows, tokenizer, data)
        return Encoded(features, False, counts)
    task.prepare_tokenizer(tokenizer)  # what encoding changes in the tokenizer (sft's chat template), on a hit too
    path = Path(folder) / f"{cache_key(task, rows, tokenizer, data)}.arrow"
    if path.exists():
        found = _load(path)
        if found is not None:
            return found
    features, effects = _encode(task, rows, tokenizer, data)
    _store(path, features, effects)
    return Encoded(features, False, effects["counts"])


def cache_key(task, rows: pd.DataFrame, tokenizer, data: DataConfig) -> str:
    settings = {"format": FORMAT, "lmtune": __version__, "code": _code_digest(), "task": task.name,
                "state": task.state(),
                "task_config": task.cfg.model_dump(mode="json"), "data": data.model_dump(mode="json"),
                "columns": [[str(name), str(dtype)] for name, dtype in rows.dtypes.items()]}
    parts = (_json(settings, sort_keys=True).encode(), _tokenizer_bytes(tokenizer), _rows_bytes(rows))
    return hashlib.sha256(b"".join(hashlib.sha256(part).digest() for part in parts)).hexdigest()


def _json(value, sort_keys: bool = False) -> str:
    # numpy arrays in full (str() would abbreviate long ones); anything else JSON lacks by its repr
    return json.dumps(value, sort_keys=sort_keys, default=lambda v: v.tolist() if hasattr(v, "tolist") else repr(v))


def _rows_bytes(rows: pd.DataFrame) -> bytes:
    """Hashes of the index and every cell. pandas hashes scalars only, so list and dict cells (tokens, chats,
    answers) go in as their JSON text."""
    columns = [column if _scalar_cells(column) else column.map(_json) for _, column in rows.items()]
    hashes = [pd.util.hash_pandas_object(rows.index, categorize=False),
              *(pd.util.hash_pandas_object(column, index=False, categorize=False) for column in columns)]
    return b"".join(h.to_numpy().tobytes() for h in hashes)


def _scalar_cells(column: pd.Series) -> bool:
    return column.dtype != object or pd.api.types.infer_dtype(column, skipna=False) == "string"


def _tokenizer_bytes(tokenizer) -> bytes:
    """The whole fast tokenizer (vocabulary, normaliser, pre-tokeniser, post-processor, added tokens) or a slow
    one's saved files, with the settings that live on the Python side."""
    if tokenizer.is_fast:
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
        # Set from each call's arguments and left as the last call set them: not part of what the tokenizer is.
        spec.pop("truncation", None)
        spec.pop("padding", None)
        definition = _json(spec, sort_keys=True)
    else:
        definition = _saved_files_digest(tokenizer)
    settings = {"class": type(tokenizer).__name__, "padding_side": tokenizer.padding_side,
                "truncation_side": tokenizer.truncation_side, "model_max_length": tokenizer.model_max_length,
                "special_tokens": tokenizer.special_tokens_map, "chat_template": tokenizer.chat_template}
    return (definition + _json(settings, sort_keys=True)).encode()


@cache
def _code_digest() -> str:
    """sha256 of lmtune's own source files: an editable install (a checkout, a fix under test) changes how rows
    are encoded without changing the version, and a stale file would then train on the old encoding."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _saved_files_digest(tokenizer) -> str:
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                digest.update(hashlib.sha256(path.name.encode()).digest() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _encode(task, rows: pd.DataFrame, tokenizer, data: DataConfig) -> tuple[list[dict], dict]:
    """encode_counted(), and what it gives besides the features, for a cache hit to give again: its counts, and
    its warnings (e.g. sentences cut by max_length)."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            features, counts = task.encode_counted(rows, tokenizer, data)
    finally:
        for w in caught:  # shown as if never caught: the user's warning filters decide
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    notes = list(dict.fromkeys((w.category.__name__, str(w.message), w.filename, w.lineno) for w in caught))
    return features, {"warnings": notes, "counts": counts}


def _load(path: Path) -> Encoded | None:
    """The features and counts stored at `path`, encoding's warnings shown again; None, with a warning, when the
    file cannot be read, so that it is encoded and written again."""
    try:
        table = feather.read_table(path)
        effects = json.loads(table.schema.metadata[METADATA])
        notes = [(str(category), str(message), str(filename), int(lineno))
                 for category, message, filename, lineno in effects["warnings"]]
        counts = {str(k): int(n) for k, n in effects["counts"].items()}
        features = table.to_pylist()
    except Exception as err:  # whatever is wrong with a cache file, encoding afresh is the cure, never a failed run
        warnings.warn(f"ignoring unreadable token cache file {path} ({type(err).__name__}: {err}); encoding again",
                      stacklevel=3)
        return None
    with suppress(OSError):
        os.utime(path)  # now the most recently used: the last one pruning would delete
    for category, message, filename, lineno in notes:
        kind = getattr(builtins, category, None)
        is_warning = isinstance(kind, type) and issubclass(kind, Warning)
        warnings.warn_explicit(message, kind if is_warning else UserWarning, filename, lineno)
    return Encoded(features, True, counts)


def _store(path: Path, features: list[dict], effects: dict) -> None:
    try:
        table = pa.Table.from_pylist(features)
    except (pa.ArrowException, OverflowError, TypeError) as err:
        print(f"note: tokenised features not cached: Arrow cannot hold them ({err})")
        return
    # repr, not ==: it also tells 1 from 1.0, a tuple from a list, a numpy scalar from a Python one, and Arrow
    # takes its columns from the first feature, dropping keys that only later ones have.
    if repr(table.to_pylist()) != repr(features):
        print("note: tokenised features not cached: they would not come back from Arrow exactly as encoded")
        return
    try:
        with atomic_file(path) as f:
            feather.write_feather(table.replace_schema_metadata({METADATA: json.dumps(effects)}), f,
                                  compression="lz4")
    except OSError as err:
        warnings.warn(f"could not write token cache file {path}: {err}", stacklevel=3)
        return
    prune(path.parent)


def prune(folder: Path, limit: int = MAX_BYTES) -> None:
    """Delete the least recently used files beyond `limit` bytes in all; the newest one always stays."""
    files = []
    for path in folder.glob("*.arrow"):
        with suppress(FileNotFoundError):  # another process pruned it first
            stat = path.stat()
            files.append((stat.st_mtime, stat.st_size, path))
    total = 0
    for i, (_, size, path) in enumerate(sorted(files, reverse=True)):
        total += size
        if total > limit and i:
            path.unlink(missing_ok=True)
