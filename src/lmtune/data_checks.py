"""What a training run would report about its data, without training: for the web UI and `lmtune check`.

`preview` reads the training file and finds its columns as training does; `check_data` runs the task's own
loading, model choice and tokenisation, then adds what only a look at the tokens shows: how long the rows are
against data.max_length, and for chats which tokens the loss is computed on.

    check_data({"data": {"train": "reviews.csv"}})["warnings"]
"""

from __future__ import annotations

import io
import json
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd

from lmtune.config import Config, DataConfig
from lmtune.data.columns import find_columns
from lmtune.data.readers import read_table
from lmtune.errors import DataError
from lmtune.methods import virtual_tokens
from lmtune.models.load import load_tokenizer
from lmtune.recipe import encoded, model_defaults
from lmtune.reporting.summary import data_limitations
from lmtune.runs import as_config, with_demo_data
from lmtune.tasks import checked_config, new_task
from lmtune.tasks.base import Task
from lmtune.tasks.language_model import CorpusTask
from lmtune.tasks.sft import SFT
from lmtune.tasks.text_inputs import TextTask
from lmtune.training.packing import IGNORE

PACKAGE = Path(__file__).parent
MEASURED_ROWS = 5000  # training rows tokenised for the length statistics: seconds on a CPU for any file size
MEASURE_LIMIT = 100_000  # tokens: the "no limit" lengths are measured at; a longer row counts as this long
BINS = 20
LOSS_MASK_CHATS = 2
TRUNCATION_WARNING = 0.01  # a smaller share of cut rows is not worth a warning


def preview(config: Config | dict | str | Path | None, rows: int = 20) -> dict:
    """The training file's columns and first `rows` rows (as strings), and the columns training would use where
    the config leaves them to lmtune, found by the same code, with the line training prints about them. A file
    whose columns cannot be told apart gives the reason in "error" (training would stop there)."""
    cfg = checked_config(with_demo_data(as_config(config)))
    task, d = new_task(cfg), cfg.data
    if isinstance(task, SFT):
        return _chat_preview(task, d, rows)
    text_task = isinstance(task, TextTask)
    labels = d.label_column if isinstance(d.label_column, list) else [d.label_column]
    wanted = {"text_column": d.text_column, "text_pair_column": d.text_pair_column, "label_column": d.label_column}
    expected = [c for c in (d.text_column, d.text_pair_column, *labels) if c is not None] if text_task else []
    table = read_table(d.train, d.format, d.header, expected, allow_extra_fields=d.extra_fields == "ignore")
    out = {"file": d.train, "columns": [str(c) for c in table.columns],
           "rows": [[_cell(v) for v in row] for row in table.head(rows).itertuples(index=False)],
           "total_rows": len(table), "detected": {}, "how": None}
    if text_task:
        try:
            with _said() as said:
                found = find_columns(table, d, wanted, categorical=task.categorical)
            # The columns training will read: those found, and those the config names that the file has (the
            # default "text"/"label" among them, which need no finding).
            named = {k: v for k, v in wanted.items() if isinstance(v, str | int) and v in table.columns}
            out["detected"] = named | found
        except DataError as err:
            out["error"] = str(err)
        else:
            out["how"] = said[0] if said else None
    return out


def _chat_preview(task: SFT, d: DataConfig, rows: int) -> dict:
    """The chats the sft task reads from the training file, each as its JSON text."""
    try:
        chats = task.read_eval(d)["messages"]
    except DataError as err:
        return {"file": d.train, "columns": [], "rows": [], "total_rows": 0, "detected": {}, "how": None,
                "error": str(err)}
    found = chats.attrs.get("format") or f"template {task.cfg.template}"
    how = "found from the columns" if d.chat_format == "auto" and task.cfg.template == "none" else "as configured"
    return {"file": d.train, "columns": ["messages"],
            "rows": [[json.dumps(chat, ensure_ascii=False)] for chat in chats.head(rows)], "total_rows": len(chats),
            "detected": {"chat_format": found}, "how": f"chat format: {found} ({how})"}


def _cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def check_data(config: Config | dict | str | Path | None) -> dict:
    """Everything training would report about the data, from the same code and without training: the task's
    data report (rows, sources, duplicates, label conflicts, leakage, labels or targets, ...), the model it would
    choose, the unknown-token rate; plus each split's class balance, the training rows' token lengths against
    data.max_length, for chats the tokens the loss scores, and warnings in plain sentences. `notes` holds what
    training would print meanwhile (the columns found, the model chosen, ...)."""
    cfg = checked_config(with_demo_data(as_config(config)))
    given_model = cfg.model.name
    task = new_task(cfg)
    task.virtual_tokens = virtual_tokens(cfg.method)
    with _said() as notes:
        splits, report = task.load(cfg)
        cfg, path, choice = model_defaults(cfg, task, splits["train"], announce=True)
        report["reads_best"] = choice.name
        tokenizer = load_tokenizer(path, cfg.model)
        features = encoded(task, splits, tokenizer, cfg.data, report)
        lengths = _lengths(task, splits["train"], tokenizer, cfg)
    chosen = cfg.model.name != given_model
    out = {"task": task.name, "model": {"name": cfg.model.name, "chosen_by_lmtune": chosen,
                                        "why": choice.reason if chosen else None},
           "method": cfg.method.name, **report}
    if isinstance(task, TextTask) and task.categorical:
        out["class_balance"] = {split: _class_counts(rows["label"], task.labels) for split, rows in splits.items()}
    out["lengths"] = lengths
    if "messages" in splits["train"]:
        out["loss_mask"] = [_scored_tokens(f, tokenizer) for f in features["train"][:LOSS_MASK_CHATS]]
    scored = "test" if "test" in splits else "validation"
    out["warnings"] = (data_limitations(report, scored, len(splits[scored]) if scored in splits else None)
                       + _duplicate_warnings(report) + _length_warnings(report, lengths, cfg.data.max_length))
    out["notes"] = notes
    return out


def _lengths(task: Task, rows: pd.DataFrame, tokenizer, cfg: Config) -> dict | None:
    """Token lengths of up to MEASURED_ROWS training rows, encoded by the task with no length limit, and how many
    data.max_length cuts. None for corpora, which are cut into max_length blocks, so no row is truncated."""
    if isinstance(task, CorpusTask):
        return None
    sample = rows if len(rows) <= MEASURED_ROWS else rows.sample(MEASURED_ROWS, random_state=cfg.train.seed)
    unlimited = cfg.data.model_copy(update={"max_length": MEASURE_LIMIT})
    sizes = np.array([len(f["input_ids"]) for f in task.encode(sample, tokenizer, unlimited)])
    edges = np.unique(np.linspace(sizes.min(), sizes.max() + 1, BINS + 1).round().astype(int))
    counts, _ = np.histogram(sizes, bins=edges)
    cut = int((sizes > cfg.data.max_length).sum())
    return {"measured_rows": len(sizes), "training_rows": len(rows),
            "percentiles": {f"p{q}": int(np.percentile(sizes, q, method="higher")) for q in (50, 90, 99)}
            | {"max": int(sizes.max())},
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
            "max_length": cfg.data.max_length, "truncated_rows": cut, "truncated_share": round(cut / len(sizes), 4)}


def _class_counts(labels: pd.Series, order: Sequence[str]) -> dict[str, int]:
    counts = Counter(x for value in labels for x in (value if isinstance(value, list) else [value]))
    return {label: counts[label] for label in order}


def _scored_tokens(feature: dict, tokenizer) -> list[dict]:
    return [{"token": tokenizer.decode([token]), "scored": label != IGNORE}
            for token, label in zip(feature["input_ids"], feature["labels"], strict=True)]


def _duplicate_warnings(report: dict) -> list[str]:
    return [f"{n:,} {split} rows repeat another {split} row exactly (same text and label), so they count more than "
            "once." for split, n in (report.get("duplicates") or {}).items() if n]


def _length_warnings(report: dict, lengths: dict | None, max_length: int) -> list[str]:
    """The task's own counts of what fitting every split into max_length did (sft), else the measured share."""
    limit = {what: n for what, n in (report.get("length_limit") or {}).items() if n}
    if limit:
        done = ", ".join(f"{n:,} {what}" for what, n in limit.items())
        return [f"Fitting the examples into data.max_length={max_length} tokens: {done} (data.too_long); raise "
                "--max-length to keep them whole."]
    if lengths and lengths["truncated_share"] >= TRUNCATION_WARNING:
        return [f"{lengths['truncated_share']:.1%} of the training rows ({lengths['truncated_rows']:,} of the "
                f"{lengths['measured_rows']:,} measured) are longer than data.max_length={max_length} tokens and "
                f"will be cut (the longest has {lengths['percentiles']['max']:,}); raise --max-length to keep more "
                "of them."]
    return []


@contextmanager
def _said() -> Iterator[list[str]]:
    """What lmtune prints and warns meanwhile, collected as lines for the result instead of shown: the JSON of
    `lmtune check --json` stays alone on stdout. Other libraries' warnings are shown as usual. Swaps sys.stdout
    while it runs, as redirect_stdout does: one check at a time per process."""
    lines: list[str] = []
    printed = io.StringIO()
    caught: list[warnings.WarningMessage] = []
    try:
        with redirect_stdout(printed), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield lines
    finally:
        said = printed.getvalue().splitlines()
        for w in caught:
            if Path(w.filename).is_relative_to(PACKAGE):
                said.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        lines += dict.fromkeys(said)  # a warning repeated from one place shows once, as Python's default filter does
