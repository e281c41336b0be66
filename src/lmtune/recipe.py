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

from lmtune.config import Config, DataConfig, TrainConfig
from lmtune.crossval import fold_report, make_folds, read_predictions, scalars, write_results
from lmtune.data.token_cache import cache_dir, cached_encode
from lmtune.errors import ConfigError
from lmtune.evaluation.baselines import run_baselines
from lmtune.evaluation.languages import accuracy_by_language
from lmtune.io import write_json, write_jsonl, write_text
from lmtune.methods import apply_method, count_parameters, virtual_tokens
from lmtune.models import model_kind, resolve
from lmtune.models.choose import Choice, choose_model, row_texts
from lmtune.models.load import load_tokenizer
from lmtune.models.registry import licence_notice
from lmtune.numbers import higher_is_better
from lmtune.record import run_record
from lmtune.reporting.report import write_reports
from lmtune.reporting.summary import UNKNOWN_TOKEN_WARNING
from lmtune.reporting.variance import summarise
from lmtune.runs import as_config, claimed, free_run_dir, resumed_config, with_demo_data
from lmtune.tasks import checked_config, new_task
from lmtune.trained.explain import report_explanations
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
    cfg = checked_config(with_demo_data(cfg))
    if cfg.data.unlabelled and splits is None:
        raise ConfigError("data.unlabelled is read by self-training (lmtune train, lmtune.api.self_train) and by "
                          "lmtune distill; one training run learns from labelled rows only")
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
    t0 = time.perf_counter()
    set_seed(cfg.train.seed)
    task = new_task(cfg)
    task.virtual_tokens = virtual_tokens(cfg.method)
    splits, data_report = task.load(cfg) if splits is None else (splits, fold_report(task, cfg, splits))
    cfg, path, choice = model_defaults(cfg, task, splits["train"], accelerator.is_main_process)
    data_report["reads_best"] = choice.name
    record = run_record(cfg) if accelerator.is_main_process else None  # hashes the data: one process is enough
    tokenizer = load_tokenizer(path, cfg.model)
    features = encoded(task, splits, tokenizer, cfg.data, data_report)
    set_seed(cfg.train.seed)  # the new head's initial weights depend on it
    model = _trainable_model(task, path, cfg)
    params = count_parameters(model)
    if accelerator.is_main_process:
        write_text(cfg.run_dir / "config.yaml", cfg.to_yaml())
        _announce(cfg, params, data_report)
    validation = Validation(task, tokenizer, splits, features, cfg.train, on_evaluate)
    before = validation(model) if validation.rows is not None and cfg.train.eval_before else None
    tracker = Tracker(cfg.run_dir, cfg, enabled=accelerator.is_main_process)
    model, result, cache_report = _fit(accelerator, model, task, tokenizer, features["train"], cfg, validation,
                                       resume, tracker)
    scored, predictions, predicted = _final_scores(task, model, tokenizer, splits, features, validation, result,
                                                   cfg.train.eval_batch_size)
    metrics: dict = {"task": task.name, "model": cfg.model.name, "method": cfg.method.name, "params": params,
                     "data": data_report, "lmtune": __version__, "hardware": hardware(cfg),
                     **({"validation_before": before} if before is not None else {}), **scored}
    by_language = accuracy_by_language(predictions)
    if by_language:
        metrics["by_language"] = by_language
    metrics["train"] = {"steps": result.steps, "seconds": result.seconds, "eval_seconds": result.eval_seconds,
                        "stopped_early": result.stopped_early,
                        "best": result.best, "total_seconds": round(time.perf_counter() - t0, 2)}
    if cache_report:
        metrics["train"]["frozen_cache"] = cache_report
    if accelerator.is_main_process:
        started = time.perf_counter()
        explained = report_explanations(model, tokenizer, task, splits[predicted], predictions, task.explained_rows,
                                        cfg.train.seed) if predicted else None
        if explained:
            explained["seconds"] = round(time.perf_counter() - started, 2)
        _save_run(cfg, model, tokenizer, task, record, metrics, predictions, splits, tracker, explained)
    accelerator.wait_for_everyone()
    return Run(cfg.run_dir, metrics, cfg)


def encoded(task, splits: dict[str, pd.DataFrame], tokenizer, data: DataConfig, report: dict) -> dict[str, list]:
    """Each split's features (from the token cache where it has them); what encoding found goes into `report`."""
    by_split = {split: cached_encode(task, rows, tokenizer, data, cache_dir(data)) for split, rows in splits.items()}
    report["tokenized_from_cache"] = {split: found.from_cache for split, found in by_split.items()}
    counts = [found.counts for found in by_split.values()]
    if any(counts):
        report["length_limit"] = {k: sum(c[k] for c in counts) for k in counts[0]}
    features = {split: found.features for split, found in by_split.items()}
    report["unknown_token_rate"] = unknown_rate(features["train"], tokenizer)
    return features


def _trainable_model(task, path: str, cfg: Config):
    model = task.build_model(path, cfg.model)
    if cfg.train.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input that requires grad, so frozen embeddings (LoRA) work too.
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    task.precision = cfg.train.precision
    return apply_method(model, cfg.method, task.peft_task_type)


class Validation:
    """What fit calls to evaluate: the task's evaluation of the validation split. The last result is kept, so the
    final metrics reuse it when the weights have not changed since; `on_evaluate` sees each one."""

    def __init__(self, task, tokenizer, splits: dict[str, pd.DataFrame], features: dict[str, list], cfg: TrainConfig,
                 on_evaluate: Callable[[int, dict], None] | None):
        self.task, self.tokenizer, self.on_evaluate = task, tokenizer, on_evaluate
        self.rows, self.features = splits.get("validation"), features.get("validation")
        self.batch_size, self.count = cfg.eval_batch_size, 0 if cfg.eval_before else 1
        self.last: tuple[dict, list[dict]] | None = None

    def __call__(self, model) -> dict:
        self.last = self.task.evaluate(model, self.tokenizer, self.rows, self.features, self.batch_size)
        if self.on_evaluate:
            self.on_evaluate(self.count, self.last[0])
        self.count += 1
        return self.last[0]


def _fit(accelerator, model, task, tokenizer, features: list[dict], cfg: Config, validation: Validation,
         resume: bool, tracker: Tracker):
    """(the trained, unwrapped model, fit's result, the frozen-layer cache's report): the task's objective, its
    training-only reshaping (packing), and the optional frozen-layer cache stage, then the loop."""
    objective = Objective(loss=task.loss, evaluate=validation if validation.rows is not None else None,
                          units=task.loss_units, **selection_metric(cfg.train.metric, task))
    features = task.prepare_train(features)
    collate = task.collate(tokenizer)
    cache, cache_report = frozen_cache.plan(model, task, collate, features, cfg, accelerator)
    if cache:
        features, collate, objective.loss = cache.features, cache.collate, cache.loss
    try:
        result = fit(accelerator, model, features, collate, [len(f["input_ids"]) for f in features], cfg.train,
                     objective, cfg.run_dir, resume, tracker.log)
    except BaseException:
        tracker.abort()
        raise
    return accelerator.unwrap_model(model), result, cache_report


def _final_scores(task, model, tokenizer, splits: dict[str, pd.DataFrame], features: dict[str, list],
                  validation: Validation, result, batch_size: int) -> tuple[dict, list[dict], str | None]:
    """({split: metrics}, the prediction records of the last split scored, that split's name)."""
    # The last evaluation already scored the final weights, unless best-model restore or finish() changed them.
    unchanged = bool(result.best and result.history and result.best["step"] == result.history[-1]["step"])
    if validation.rows is not None and task.finish(model, tokenizer, validation.rows, validation.features,
                                                   batch_size):
        unchanged = False
    scored, predictions, predicted = {}, [], None
    for split in ("validation", "test"):
        if split == "validation" and unchanged and validation.last:
            scored[split], predictions = validation.last
        elif split in splits:
            scored[split], predictions = task.evaluate(model, tokenizer, splits[split], features[split], batch_size)
        else:
            continue
        predicted = split
    return scored, predictions, predicted


def _save_run(cfg: Config, model, tokenizer, task, record: dict | None, metrics: dict, predictions: list[dict],
              splits: dict[str, pd.DataFrame], tracker: Tracker, explained: dict | None) -> None:
    run_dir = cfg.run_dir
    save_model(model, tokenizer, task, run_dir / "model", cfg, record)
    write_jsonl(run_dir / "predictions.jsonl", predictions)
    if explained:
        write_json(run_dir / "explanations.json", explained)
        metrics["faithfulness"] = {**explained["faithfulness"], "seconds": explained["seconds"]}
    metrics.update(run_baselines(task, splits, predictions))
    write_json(run_dir / "metrics.json", metrics)
    tracker.finish(metrics)
    write_reports(run_dir)  # report.html/.md and model/README.md; a failure is logged, the run kept
    if not cfg.train.keep_final_checkpoint:
        # Nothing is left to resume, and the optimizer states are most of the run's size (1.8 GB of 2.3 GB for
        # the demo on multilingual-e5-small).
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


DECODER_CLASSIFIER_LR = 3e-4


def model_defaults(cfg: Config, task, rows: pd.DataFrame, announce: bool) -> tuple[Config, str, Choice]:
    """The model and method the user left to lmtune: the built-in model that reads the training texts' language,
    and LoRA for a decoder trained on an encoder task. Returns the config, the resolved model path and the built-in
    model that reads the data best, with why (the model chosen when the config names none; the unknown-token
    warning's suggestion otherwise)."""
    choice = choose_model(row_texts(rows, task.input_fields), task.model_kind)
    if "name" not in cfg.model.model_fields_set:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": choice.name})})
        if announce:
            print(f"model: {choice.name}, chosen for the data: {choice.reason}. --model to choose another")
    path = resolve(cfg.model.name)
    decoder_as_encoder = task.model_kind == "encoder" and model_kind(path) == "decoder"
    if decoder_as_encoder and "name" not in cfg.method.model_fields_set:
        # Full fine-tuning keeps weights, gradients and two AdamW states: smollm2-135m as a classifier peaked at
        # 6.3 GB that way; its LoRA adapters train a few percent of the weights.
        cfg = cfg.model_copy(update={"method": cfg.method.model_copy(update={"name": "lora"})})
        if announce:
            print("method: lora, the default for a decoder trained as a classifier/tagger; --method full to change")
    if decoder_as_encoder and "lr" not in cfg.train.model_fields_set:
        # A new head on a decoder learns slowly at the encoders' 1e-4: smollm2-135m on 2,000 SST-2 rows reached
        # 0.577 dev accuracy after an epoch at 1e-4, 0.820 at 3e-4 (README, "A decoder as a classifier").
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"lr": DECODER_CLASSIFIER_LR})})
        if announce:
            print(f"lr: {DECODER_CLASSIFIER_LR:g}, the default for a decoder trained as a classifier/tagger; --lr to "
                  "change")
    return cfg, path, choice


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
    cfg = checked_config(with_demo_data(as_config(config)))
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
