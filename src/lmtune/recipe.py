"""The training recipe: config → data → model → method → fit → evaluation → saved run, for one model.

    run = train({"data": {"train": "reviews.csv"}})
    run.metrics["test"]["accuracy"], run.predict(["great value", "never again"])
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from accelerate.utils import set_seed

from lmtune.config import Config, DataConfig, model_kind_of
from lmtune.crossval import fold_report, make_folds, read_predictions, scalars, summarise, write_results
from lmtune.data.token_cache import cache_dir, cached_encode
from lmtune.errors import ConfigError
from lmtune.evaluation.baselines import run_baselines
from lmtune.evaluation.languages import accuracy_by_language
from lmtune.io import write_json, write_jsonl, write_text
from lmtune.methods import apply_method, count_parameters, virtual_tokens
from lmtune.models import model_kind, resolve
from lmtune.models.choose import choose_model, row_texts
from lmtune.models.load import load_tokenizer
from lmtune.models.registry import licence_notice
from lmtune.numbers import higher_is_better
from lmtune.record import run_record
from lmtune.reporting.report import write_reports
from lmtune.reporting.summary import UNKNOWN_TOKEN_WARNING
from lmtune.runs import as_config, claimed, free_run_dir, resumed_config, with_demo_data
from lmtune.tasks import new_task
from lmtune.trained.folder import save_model
from lmtune.trained.predictor import Predictor
from lmtune.training import frozen_cache
from lmtune.training.device import hardware, make_accelerator
from lmtune.training.loop import Objective, fit
from lmtune.training.tracking import Tracker
from lmtune.version import __version__


@dataclass
class Run:
    """A finished training run: its folder, metrics, and the trained model ready to predict."""

    path: Path
    metrics: dict
    config: Config
    _predictor: Predictor | None = field(default=None, repr=False)

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    def predict(self, inputs: list[str] | list[dict], batch_size: int = 64) -> list[dict]:
        if self._predictor is None:
            self._predictor = Predictor(self.model_dir)
        return self._predictor.predict(inputs, batch_size)


def train(config: Config | dict | str | Path | None = None, resume: bool = False, *,
          splits: dict[str, pd.DataFrame] | None = None,
          on_evaluate: Callable[[int, dict], None] | None = None) -> Run:
    """Fine-tune one model. `splits` ({"train", "validation"[, "test"]: rows in the task's columns}) replaces
    reading and splitting data.train; cross_validate passes each fold that way.

    `on_evaluate(n, metrics)` sees each validation during training: n counts evaluations (1, 2, ...; 0 is the
    eval_before one), not steps, which the evaluation is not told. An exception it raises (tuning's
    optuna.TrialPruned) ends the run there: config.yaml, train_log.jsonl and checkpoints stay, no model/."""
    cfg = as_config(config)
    if resume:
        cfg = resumed_config(cfg)
    cfg = with_demo_data(cfg)
    accelerator = make_accelerator(cfg.train)
    if resume:
        return _train(cfg, accelerator, True, splits, on_evaluate)
    new_base = not Path(cfg.output_dir).exists()
    cfg = claimed(cfg, accelerator)
    try:
        return _train(cfg, accelerator, False, splits, on_evaluate)
    except BaseException:
        # Failed before writing anything (bad data, say): no empty folders left behind.
        if accelerator.is_main_process and not any(cfg.run_dir.iterdir()):
            cfg.run_dir.rmdir()
            if new_base and not any(cfg.run_dir.parent.iterdir()):
                cfg.run_dir.parent.rmdir()
        raise


def _train(cfg: Config, accelerator, resume: bool, splits: dict[str, pd.DataFrame] | None,
           on_evaluate: Callable[[int, dict], None] | None) -> Run:
    run_dir, t0 = cfg.run_dir, time.perf_counter()
    set_seed(cfg.train.seed)
    task = new_task(cfg)
    task.virtual_tokens = virtual_tokens(cfg.method)
    if splits is None:
        splits, data_report = task.load(cfg)
    else:
        data_report = fold_report(task, cfg, splits)
    cfg, path, data_report["reads_best"] = _model_defaults(cfg, task, splits["train"], accelerator.is_main_process)
    record = run_record(cfg) if accelerator.is_main_process else None  # hashes the data: one process is enough
    tokenizer = load_tokenizer(path, cfg.model)
    encoded = {split: cached_encode(task, rows, tokenizer, cfg.data, cache_dir(cfg.data))
               for split, rows in splits.items()}
    features = {split: found for split, (found, _) in encoded.items()}
    data_report["tokenized_from_cache"] = {split: hit for split, (_, hit) in encoded.items()}
    data_report["unknown_token_rate"] = unknown_rate(features["train"], tokenizer)
    set_seed(cfg.train.seed)  # the new head's initial weights depend on it
    model = task.build_model(path, cfg.model)
    if cfg.train.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input that requires grad, so frozen embeddings (LoRA) work too.
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model = apply_method(model, cfg.method, task.peft_task_type)
    params = count_parameters(model)
    task.precision = cfg.train.precision
    if accelerator.is_main_process:
        write_text(run_dir / "config.yaml", cfg.to_yaml())
        _announce(cfg, params, data_report)

    batch = cfg.train.eval_batch_size
    evaluate, last = None, {"n": 0 if cfg.train.eval_before else 1}
    if "validation" in splits:
        def evaluate(m):
            last["result"] = task.evaluate(m, tokenizer, splits["validation"], features["validation"], batch)
            if on_evaluate:
                on_evaluate(last["n"], last["result"][0])
            last["n"] += 1
            return last["result"][0]
    objective = Objective(loss=task.loss, evaluate=evaluate, units=getattr(task, "loss_units", None),
                          **selection_metric(cfg.train.metric, task))
    before = evaluate(model) if evaluate and cfg.train.eval_before else None
    # Optional step: training-only reshaping of the examples, e.g. packing (sft); evaluation never sees it.
    prepare = getattr(task, "prepare_train", None)
    train_features = prepare(features["train"]) if prepare else features["train"]
    collate = task.collate(tokenizer)
    cache, cache_report = frozen_cache.plan(model, task, collate, train_features, cfg, accelerator)
    if cache:
        train_features, collate, objective.loss = cache.features, cache.collate, cache.loss
    tracker = Tracker(run_dir, cfg, enabled=accelerator.is_main_process)
    try:
        result = fit(accelerator, model, train_features, collate,
                     [len(f["input_ids"]) for f in train_features], cfg.train, objective, run_dir, resume,
                     tracker.log)
    except BaseException:
        tracker.abort()
        raise
    model = accelerator.unwrap_model(model)
    # The last evaluation already scored the final weights, unless best-model restore or finish() changed them.
    unchanged = bool(result.best and result.history and result.best["step"] == result.history[-1]["step"])
    if "validation" in splits and task.finish(model, tokenizer, splits["validation"], features["validation"], batch):
        unchanged = False

    metrics: dict = {"task": task.name, "model": cfg.model.name, "method": cfg.method.name, "params": params,
                     "data": data_report, "lmtune": __version__, "hardware": hardware(cfg)}
    if before is not None:
        metrics["validation_before"] = before
    predictions: list[dict] = []
    for split in ("validation", "test"):
        if split == "validation" and unchanged and "result" in last:
            metrics[split], predictions = last["result"]
        elif split in splits:
            metrics[split], predictions = task.evaluate(model, tokenizer, splits[split], features[split], batch)
    by_language = accuracy_by_language(predictions)
    if by_language:
        metrics["by_language"] = by_language
    metrics["train"] = {"steps": result.steps, "seconds": result.seconds, "eval_seconds": result.eval_seconds,
                        "stopped_early": result.stopped_early,
                        "best": result.best, "total_seconds": round(time.perf_counter() - t0, 2)}
    if cache_report:
        metrics["train"]["frozen_cache"] = cache_report
    if accelerator.is_main_process:
        save_model(model, tokenizer, task, run_dir / "model", cfg, record)
        write_jsonl(run_dir / "predictions.jsonl", predictions)
        metrics.update(run_baselines(task, splits, predictions))
        write_json(run_dir / "metrics.json", metrics)
        tracker.finish(metrics)
        write_reports(run_dir)  # report.html/.md and model/README.md; a failure is logged, the run kept
        if not cfg.train.keep_final_checkpoint:
            # Nothing is left to resume, and the optimizer states are most of the run's size (1.8 GB of 2.3 GB for
            # the demo on multilingual-e5-small).
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    accelerator.wait_for_everyone()
    return Run(run_dir, metrics, cfg)


def _model_defaults(cfg: Config, task, rows: pd.DataFrame, announce: bool) -> tuple[Config, str, str]:
    """The model and method the user left to lmtune: the built-in model that reads the training texts' language,
    and LoRA for a decoder trained on an encoder task. Returns the config, the resolved model path and the model
    that reads the data best (for the unknown-token warning)."""
    choice = choose_model(row_texts(rows, task.input_fields), model_kind_of(cfg))
    if "name" not in cfg.model.model_fields_set:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": choice.name})})
        if announce:
            print(f"model: {choice.name}, chosen for the data: {choice.reason}. --model to choose another")
    path = resolve(cfg.model.name)
    if ("name" not in cfg.method.model_fields_set and model_kind_of(cfg) == "encoder"
            and model_kind(path) == "decoder"):
        # Full fine-tuning keeps weights, gradients and two AdamW states: smollm2-135m as a classifier peaked at
        # 6.3 GB that way; its LoRA adapters train a few percent of the weights.
        cfg = cfg.model_copy(update={"method": cfg.method.model_copy(update={"name": "lora"})})
        if announce:
            print("method: lora, the default for a decoder trained as a classifier/tagger; --method full to change")
    return cfg, path, choice.name


def _announce(cfg: Config, params: dict, data_report: dict) -> None:
    print(f"run folder: {cfg.run_dir}\ntrainable parameters: {params['trainable']:,} of {params['total']:,} "
          f"({params['trainable_pct']}%)")
    notice = licence_notice(cfg.model.name)
    if notice:
        print(f"licence: {notice}")
    unknown, better = data_report["unknown_token_rate"], data_report["reads_best"]
    if unknown > UNKNOWN_TOKEN_WARNING:
        hint = f"--model {better} reads it" if better != cfg.model.name else \
            "a model whose vocabulary covers the language will do better"
        print(f"warning: {unknown:.0%} of the training tokens are unknown to {cfg.model.name}'s tokenizer, so the "
              f"model cannot read much of this text; {hint}")


def selection_metric(name: str, task) -> dict:
    """The validation metric that picks the best checkpoint: the task's own unless the config names one."""
    if name == "auto":
        return {"metric": task.metric, "higher_is_better": task.higher_is_better}
    return {"metric": name, "higher_is_better": higher_is_better(name)}


def unknown_rate(features: list[dict], tokenizer) -> float:
    """Share of tokens the tokenizer could not represent: the first thing to check when a model
    underperforms on another language or script (MiniLM, for one, has few Chinese characters)."""
    unk = tokenizer.unk_token_id
    if unk is None:  # byte-level tokenizers can represent everything
        return 0.0
    total = sum(len(f["input_ids"]) for f in features)
    return round(sum(f["input_ids"].count(unk) for f in features) / max(total, 1), 4)


def evaluate(model_or_run: str | Path, data: DataConfig, batch_size: int = 128,
             output: str | Path | None = None) -> dict:
    """Metrics of a trained model on a labelled file; predictions written beside them when `output`."""
    metrics, predictions = Predictor(model_or_run).evaluate(data, batch_size)
    if output:
        write_json(Path(output) / "metrics.json", metrics)
        write_jsonl(Path(output) / "predictions.jsonl", predictions)
    return metrics


def cross_validate(config: Config | dict | str | Path | None = None, folds: int = 5) -> dict:
    """K-fold cross-validation over the training file: fold i trains runs/<name>/fold-<i> with fold i held out
    as its validation split. Writes runs/<name>/cv.json and cv.md (per-fold metrics, mean ± sample std) and
    oof_predictions.jsonl (every row predicted once, by the model that did not train on it); returns cv.json."""
    cfg = with_demo_data(as_config(config))
    if cfg.data.validation or cfg.data.test:
        raise ConfigError("cross-validation holds out each fold of the training file in turn, so it takes no "
                          "validation or test file; remove data.validation / data.test (--validation / --test)")
    cfg = free_run_dir(cfg)
    # Every row read once, in "train": the folds, not validation_size/test_size, decide what is held out.
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"validation_size": 0.0, "test_size": 0.0})})
    task = new_task(cfg)
    rows = task.load(cfg)[0]["train"]
    per_fold, oof = [], []
    for i, (kept, held) in enumerate(make_folds(rows, folds, cfg.train.seed), start=1):
        run = train(cfg.model_copy(update={"name": f"fold-{i}", "output_dir": str(cfg.run_dir)}),
                    splits={"train": rows.iloc[kept], "validation": rows.iloc[held]})
        per_fold.append({"fold": i, "run": str(run.path), "train_rows": len(kept), "validation_rows": len(held),
                         "metrics": scalars(run.metrics["validation"])})
        oof += read_predictions(run.path, i)
    result = {"name": cfg.name, "task": task.name, "model": cfg.model.name, "folds": folds, "seed": cfg.train.seed,
              "rows": len(rows), "metric": task.metric, "per_fold": per_fold,
              "summary": summarise([f["metrics"] for f in per_fold])}
    write_results(cfg.run_dir, result, oof)
    return result
