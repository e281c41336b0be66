"""`lmtune predict` over files of any size: streamed in chunks, written as it goes, resumable.

Within a chunk the task's inference sorts inputs by length (little padding) and restores their order, so
output row i always answers input row i.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

from lmtune.config import Column
from lmtune.data.stream import iter_chunks
from lmtune.errors import UserError
from lmtune.trained.folder import run_data_config
from lmtune.trained.predictor import Predictor


def predict_file(model_or_run: str | Path, path: str | None, output: Path | None, *,
                 text_column: Column | None = None, text_pair_column: Column | None = None, batch_size: int = 64,
                 chunk_rows: int = 10_000, resume: bool = False, lines: Iterable[str] | None = None,
                 onnx_variant: str = "fp32") -> int:
    """Predict every input row; returns how many rows the output now holds. Text columns not given are the
    ones the run trained on (its config.yaml), then `text`."""
    as_csv = output is not None and output.suffix.lower() == ".csv"
    if resume and (output is None or as_csv):
        raise UserError("--resume needs a .jsonl --output: it continues from the rows already written there")
    # Rows go to a hidden partial file beside `output` that takes its place at the end: an existing output is
    # never cut short before the inputs have been read, and a killed job's rows stay there for --resume.
    partial = output.with_name(f".{output.name}.partial") if output else None
    target = partial if partial and (not resume or partial.exists() or not output.exists()) else output
    done = _complete_lines(target) if resume and target.exists() else 0
    into_partial = partial is not None and target == partial
    predictor = Predictor(model_or_run, onnx_variant=onnx_variant)
    if text_column is None:
        trained = run_data_config(model_or_run)
        text_column = trained.text_column
        text_pair_column = text_pair_column or (trained.text_pair_column if predictor.task.pair else None)
    total, header = done, not done
    try:
        with _sink(target, append=bool(done)) as sink:
            for chunk in iter_chunks(path, text_column, text_pair_column, lines, chunk_rows, skip=done,
                                     fields=predictor.task.input_fields):
                results = predictor.predict(chunk, batch_size)
                sink.write(_csv(results, header) if as_csv else
                           "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
                header = False
                sink.flush()
                if output:  # a killed job loses at most the chunk being written
                    os.fsync(sink.fileno())
                total += len(results)
    except BaseException:
        if into_partial and partial.exists() and not partial.stat().st_size:
            partial.unlink()  # nothing to resume from
        raise
    if into_partial:
        os.replace(partial, output)
    return total


def _sink(output: Path | None, append: bool):
    if output is None:
        return nullcontext(sys.stdout)
    return open(output, "a" if append else "w", encoding="utf-8", newline="")  # noqa: SIM115 - caller's `with`


def _complete_lines(path: Path) -> int:
    """Lines fully written to a JSONL file; a line cut off by a kill is removed, to be predicted again."""
    count, last_newline, offset = 0, 0, 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            if (i := block.rfind(b"\n")) >= 0:
                last_newline = offset + i + 1
            offset += len(block)
    if last_newline != offset:
        with open(path, "r+b") as handle:
            handle.truncate(last_newline)
    return count


def _csv(results: list[dict], header: bool) -> str:
    buffer = io.StringIO()
    flat = [{k: (json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v) for k, v in r.items()}
            for r in results]
    writer = csv.DictWriter(buffer, fieldnames=list(flat[0]) if flat else ["row"])
    if header:
        writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()
