"""The one configuration schema. YAML files, CLI flags and the Python API all validate through `Config`.

Every section forbids unknown keys, so a typo fails loudly with the nearest valid key suggested instead of
being silently ignored. The task section's own keys are the task's: `lmtune.tasks` checks them the same way.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lmtune.errors import ConfigError

Column = str | int  # a header name, or a 0-based position for files without a header


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    train: str | None = Field(None, description="Training file or datasets folder; empty = the bundled demo.")
    validation: str | None = Field(None, description="Validation file; split off `train` when absent.")
    test: str | None = Field(None, description="Test file; split off `train` when absent and test_size > 0.")
    unlabelled: str | None = Field(None, description="Texts without labels (classification): self-training "
                                   "pseudo-labels the confident ones and retrains (task.self_training_rounds); "
                                   "`lmtune distill` teaches the student on them too.")
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "disk"] = "auto"
    header: bool | None = Field(None, description="Does the CSV/TSV have a header row? None = detect.")
    text_column: Column = "text"
    text_pair_column: Column | None = None
    label_column: Column | list[Column] = Field(
        "label", description="Label column; a list of columns = several numeric targets (regression).")
    label_separator: str | None = Field(None, description="Splits a label cell into several (multi-label).")
    tag_column: int = Field(-1, description="Token tagging, CoNLL column files: 0-based position of the tag "
                            "column (the token is column 0); -1 = the last column.")
    extra_fields: Literal["error", "ignore"] = Field(
        "error", description="CSV/TSV rows with more fields than the header (or first row): 'ignore' drops the "
        "extra trailing fields.")
    lowercase: bool = False
    max_train_rows: int | None = Field(None, gt=0, description="Stratified subsample of the training rows.")
    validation_size: float = Field(0.1, ge=0, lt=1)
    test_size: float = Field(0.1, ge=0, lt=1)
    max_length: int = Field(256, gt=8, description="Token limit per example (longer inputs are truncated).")
    doc_stride: int = Field(128, gt=0, description="Question answering: tokens shared by consecutive windows "
                            "of a context longer than max_length.")
    chat_format: Literal["auto", "alpaca", "messages", "sharegpt", "prompt-completion"] = Field(
        "auto", description="sft: how rows hold a chat (detected from the columns when auto).")
    system_prompt: str | None = Field(None, description="sft: system message for chats that have none.")
    too_long: Literal["truncate", "drop", "error"] = Field(
        "truncate", description="sft: examples over max_length tokens are cut at the end, dropped, or an error.")
    source_column: Column | None = Field(None, description="sft summarisation/translation templates: input text.")
    target_column: Column | None = Field(None, description="sft summarisation/translation templates: output text.")
    cache_tokenized: bool = Field(True, description="Reuse tokenised splits from $LMTUNE_HOME/tokenized when the "
                                  "rows, tokenizer and settings are unchanged (see lmtune.data.token_cache).")

    @model_validator(mode="after")
    def _sizes(self) -> DataConfig:
        if self.validation_size + self.test_size >= 1:
            raise ValueError("validation_size + test_size must be below 1")
        return self


class ModelConfig(Section):
    name: str = Field("auto", description="Built-in name, local HF folder, or hub id (online only); auto = the "
                      "built-in model that reads the training texts' language (lmtune.models.choose): minilm / "
                      "smollm2-135m for English, a Chinese or multilingual one otherwise.")
    revision: str | None = None
    trust_remote_code: bool = Field(False, description="Run code shipped with a hub model. Off unless asked.")
    dropout: float | None = Field(None, ge=0, lt=1, description="Override the model's dropout probabilities.")


class TaskConfig(Section):
    """The task section. `name` picks the task; every other key is that task's own setting, declared by the task's
    module (its `Settings`, lmtune.tasks) and checked when the task is made. The config sits below the tasks, so
    it lets those keys through here (`extra="allow"`) and knows only what every task shares."""

    model_config = ConfigDict(extra="allow")
    name: str = "classification"
    # Shared, not classification's own: tuning switches it off for the trials of every task.
    baselines: bool = Field(True, description="Also score the task's cheap baselines on the same splits, where it "
                            "has any (classification: TF-IDF + logistic regression and majority class, seconds), "
                            "with the model's lift.")


class MethodConfig(Section):
    name: Literal["auto", "full", "freeze", "head", "lora", "prompt-tuning", "p-tuning"] = Field(
        "auto", description="auto = lora for decoder tasks (sft, clm), full otherwise.")
    freeze_layers: int = Field(0, ge=0, description="freeze: bottom N transformer layers frozen (+ embeddings).")
    cache_frozen: bool = Field(True, description="freeze: compute the frozen layers' outputs once, not every "
                               "epoch (their dropout is then off); skipped with a note where it cannot apply.")
    lora_r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_target_modules: list[str] | None = Field(None, description="None = found for the architecture.")
    merge_lora: bool = Field(True, description="lora: also save the merged weights in model/ (the adapter always "
                             "goes to model/adapter/); false = the adapter only, loaded onto the base model.")
    num_virtual_tokens: int = Field(20, gt=0, description="prompt-tuning / p-tuning: soft-prompt length.")
    prompt_init: str | None = Field(None, description="prompt-tuning: text whose embeddings start the soft "
                                    "prompt (e.g. a task description); None = random.")


DECODER_MIN_STEPS = 100  # with DECODER_LR, the least that taught smollm2-135m the identity set's name (README)
DECODER_LR = 2e-4


class TrainConfig(Section):
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimiser steps.")
    min_steps: int | None = Field(None, gt=0, description="Whole epochs are added until training takes at least "
                                  "this many optimiser steps, so a small dataset still gets enough updates "
                                  "(max_steps wins). None = exactly `epochs`; decoder tasks default to "
                                  f"{DECODER_MIN_STEPS}, measured on the identity set (README).")
    batch_size: int = Field(32, gt=0)
    max_tokens: int | None = Field(None, gt=0, description="Token-budget batches: as many rows as fit this many "
                                   "padded tokens (rows x longest row), instead of batch_size rows.")
    micro_batch_tokens: int | Literal["auto"] | None = Field(
        "auto", description="Run each batch forward and backward in pieces of at most this many padded tokens "
        "(rows x longest row; a longer row goes alone), adding up their gradients: the same update, with the "
        "activations stored for the backward pass bounded by this instead of batch_size x max_length (a longer row "
        "recomputes some layers' activations in the backward pass instead). auto = about 512 MB of them on CPU "
        "(388 tokens of smollm2-135m; encoders rarely split), whole batches on GPUs; None = whole batches.")
    eval_batch_size: int = Field(128, gt=0)
    grad_accum: int = Field(1, gt=0)
    lr: float = Field(1e-4, gt=0, description="Peak learning rate. 1e-4 suits small encoders such as the default "
                      "minilm (measured on SST-2); base/large models usually want 2e-5 to 5e-5. Decoder tasks "
                      f"(LoRA) default to {DECODER_LR:g}.")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, description="SGD only.")
    weight_decay: float = Field(0.01, ge=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup: float = Field(0.06, ge=0, description="Warm-up: a fraction of all steps if < 1, else a step count.")
    max_grad_norm: float | None = Field(1.0, gt=0)
    sparse_embeddings: bool = Field(
        True, description="AdamW updates only the word-embedding rows still in motion (the batch's and recent "
        "batches'; untied encoders, one process): dense AdamW's accuracy, faster on CPU; false = dense updates")
    release_memory: bool = Field(True, description="After each optimiser step, hand the memory training freed back "
                                 "to the system (glibc's malloc_trim; elsewhere nothing): without it the process "
                                 "grows with every new batch shape")
    bf16_frozen_weights: bool = Field(True, description="In a bf16 run, hold frozen linear weights (LoRA's base "
                                      "model) in bf16 while training: the same products in a third of the memory; "
                                      "the fp32 values come back for evaluation and the saved model")
    fast_dropout: bool = Field(True, description="On CPU, draw dropout masks 16 bits per element instead of "
                               "torch's Bernoulli sampling (same keep rate, faster steps: README, Speed)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    seed: int = 42
    group_by_length: bool = True
    eval_every: int | None = Field(None, gt=0, description="Evaluate every N steps; None = every epoch.")
    save_every: int | None = Field(None, gt=0, description="Checkpoint every N steps; None = at each eval.")
    keep_checkpoints: int = Field(1, ge=1)
    keep_final_checkpoint: bool = Field(False, description="Keep checkpoints/ once the run has finished (weights and "
                                        "optimizer states, about 3x the model); a finished run otherwise keeps "
                                        "model/ only.")
    early_stopping_patience: int | None = Field(None, gt=0, description="Evaluations without improvement.")
    metric: str = Field("auto", description="Validation metric for best model / early stopping, e.g. f1_macro; "
                        "'auto' = the task's main metric. Names with loss/perplexity/mse/mae/error: lower is better.")
    eval_before: bool = Field(False, description="Also evaluate before training, for a before/after view.")
    log_every: int = Field(20, gt=0)
    threads: int | None = Field(None, gt=0, description="torch intra-op threads; None = all cores.")
    track: Literal["none", "mlflow"] = Field("none", description="Also log to MLflow (local SQLite store "
                                             "<output_dir>/mlflow.db unless MLFLOW_TRACKING_URI is set); "
                                             "TensorBoard logs are always in runs/<name>/tensorboard.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less "
                                         "memory for long sequences, about a third more compute.")


# The CLI's shortcut flags (--data for --set data.train=...): plain aliases of dotted keys, so the CLI, YAML, the
# Python API and the web UI share one schema; the UI writes its commands with them.
SHORTCUTS = {
    "data": "data.train", "validation": "data.validation", "test": "data.test", "model": "model.name",
    "task": "task.name", "method": "method.name", "name": "name", "output_dir": "output_dir",
    "epochs": "train.epochs", "max_steps": "train.max_steps", "lr": "train.lr", "batch_size": "train.batch_size",
    "text_column": "data.text_column", "text_pair_column": "data.text_pair_column",
    "label_column": "data.label_column", "max_length": "data.max_length", "template": "task.template",
    "source_column": "data.source_column", "target_column": "data.target_column",
    "source_lang": "task.source_lang", "target_lang": "task.target_lang", "track": "train.track",
    "unlabelled": "data.unlabelled",
}


def _default(section: Section, key: str, value: Any) -> None:
    """Fill a default without marking it as given: a resumed run's saved config must still win over it."""
    setattr(section, key, value)
    section.model_fields_set.discard(key)


# Tasks that train a causal LM: their defaults differ from the encoder tasks'. Config fills those defaults while
# it validates, below the tasks, so it names them here; above it, each task says so itself (`model_kind`), and
# tests/unit/tasks/test_task_protocol.py checks that the two agree.
DECODER_TASKS = ("sft", "clm")
# Greedy decoding's default repetition penalty, on the answer's own tokens: no loops left in 50 + 50 held-out
# Alpaca en/zh answers, at about the same ROUGE-L (README, "Generation defaults").
REPETITION_PENALTY = 1.1


def model_kind_of(cfg: Config) -> str:
    """"decoder" for tasks that train a causal LM, else "encoder": which built-in models suit the task."""
    return "decoder" if cfg.task.name in DECODER_TASKS else "encoder"


class Config(Section):
    name: str = Field("run", description="Run folder name under output_dir.")
    output_dir: str = "runs"
    task: TaskConfig = TaskConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        # --name ../../x would write outside output_dir.
        if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
            raise ValueError(f"run name {name!r} must be one folder name: no '/', '\\', leading or trailing "
                             "spaces, and not '.' or '..' (use output_dir to choose where runs go)")
        return name

    @model_validator(mode="after")
    def _task_defaults(self) -> Config:
        """Fill the 'auto' model and method from the task, so every saved config names what really ran."""
        decoder = model_kind_of(self) == "decoder"
        if self.model.name == "auto":
            _default(self.model, "name", "smollm2-135m" if decoder else "minilm")
        if self.method.name == "auto":
            _default(self.method, "name", "lora" if decoder else "full")
        if decoder:
            # Chats and text blocks are long, so fewer, longer rows than the encoder defaults: 4 packed rows of
            # 1024 tokens per step already take ~8 GB of activations for a 135M-parameter model.
            for section, key, value in ((self.data, "max_length", 1024), (self.train, "batch_size", 4),
                                        (self.train, "eval_batch_size", 16),
                                        (self.train, "min_steps", DECODER_MIN_STEPS),
                                        (self.train, "lr", DECODER_LR)):
                if key not in section.model_fields_set:
                    _default(section, key, value)
        return self


    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """Valid keys at the level of `loc`'s last element, for 'did you mean' hints."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(model.model_fields)


# Names other tools (the HF Trainer, PEFT, sentence-transformers) give the same settings, whatever the section.
ALIASES = {
    "learning_rate": "train.lr", "num_train_epochs": "train.epochs", "num_epochs": "train.epochs",
    "per_device_train_batch_size": "train.batch_size", "train_batch_size": "train.batch_size",
    "per_device_eval_batch_size": "train.eval_batch_size", "gradient_accumulation_steps": "train.grad_accum",
    "warmup_ratio": "train.warmup", "warmup_steps": "train.warmup", "lr_scheduler_type": "train.scheduler",
    "max_grad_norm": "train.max_grad_norm", "logging_steps": "train.log_every", "eval_steps": "train.eval_every",
    "save_steps": "train.save_every", "save_total_limit": "train.keep_checkpoints", "fp16": "train.precision",
    "bf16": "train.precision", "model_name_or_path": "model.name", "model_name": "model.name",
    "max_seq_length": "data.max_length", "max_seq_len": "data.max_length", "r": "method.lora_r",
    "lora_rank": "method.lora_r",
}


def validate_section(model: type[BaseModel], data: dict, where: tuple[str, ...] = ()) -> Any:
    """`model` validated from `data`, or a ConfigError naming each bad key by its dotted path (`where` is the path
    of `data` itself, e.g. ("task",)), with the nearest valid key suggested for an unknown one."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err, model, where)) from None


def _explain(err: ValidationError, model: type[BaseModel], where: tuple[str, ...]) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in (*where, *e["loc"])) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r}{_did_you_mean(e['loc'], model, where)}")
        else:
            lines.append(f"{key}: {e['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _did_you_mean(loc: tuple, model: type[BaseModel], where: tuple[str, ...]) -> str:
    if str(loc[-1]) in ALIASES:
        return f"; did you mean {ALIASES[str(loc[-1])]!r}?"
    near = difflib.get_close_matches(str(loc[-1]), _field_names(model, loc), n=1)
    return f"; did you mean {'.'.join([*where, *map(str, loc[:-1]), near[0]])!r}?" if near else ""


def parse_value(text: str) -> Any:
    """CLI values are YAML scalars, so `--set train.lr=3e-5` gives a float and `null` gives None."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:  # YAML 1.1 reads 3e-5 (no dot) as a string; users mean a number
            return float(value)
        except ValueError:
            return value
    return text if isinstance(value, dict) else value


def set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {p!r} is not a section")
    node[last] = value


def build_config(base: dict | None = None, overrides: list[str] | None = None) -> Config:
    """Merge `key.sub=value` overrides into a plain dict and validate it once."""
    data: dict = copy.deepcopy(base or {})
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        set_dotted(data, key.strip(), parse_value(text))
    return validate_section(Config, data)


def load_yaml(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    return build_config(load_yaml(path) if path else {}, overrides)
