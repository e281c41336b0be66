"""What a run was and how it scored, as tables and sentences shared by the run report and the model card."""

from __future__ import annotations

from lmtune.errors import UserError
from lmtune.evaluation.baselines import LIFTS
from lmtune.numbers import is_number
from lmtune.reporting.blocks import signed, table
from lmtune.reporting.run_files import RunFiles
from lmtune.tasks import saved_task

UNKNOWN_TOKEN_WARNING = 0.02  # the share above which training warns too
SMALL_EVAL = 500
TRAIN_KEYS = ("epochs", "max_steps", "batch_size", "grad_accum", "lr", "optimizer", "scheduler", "warmup",
              "weight_decay", "max_grad_norm", "precision", "seed", "early_stopping_patience")
METHOD_KEYS = {"freeze": ("freeze_layers",), "lora": ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"),
               "prompt-tuning": ("num_virtual_tokens", "prompt_init"), "p-tuning": ("num_virtual_tokens",)}
BASELINE_NAMES = {"tfidf_logreg": "TF-IDF + logistic regression", "majority": "majority class",
                  "bilstm": "BiLSTM (from scratch)"}


def main_metric(run: RunFiles) -> str | None:
    """The metric training selected the best model by (the saved task's), or None for a folder without one."""
    try:
        return saved_task(run.path / "model").metric
    except (UserError, KeyError, TypeError):
        return None


def summary_rows(run: RunFiles) -> list[list]:
    m = run.metrics
    rows = [["run", run.path.name], ["task", run.task], ["model", m.get("model") or run.section("model").get("name")],
            ["method", m.get("method") or run.section("method").get("name")]]
    params = m.get("params") or {}
    if "trainable" in params:
        rows.append(["trainable parameters",
                     f"{params['trainable']:,} of {params.get('total', 0):,} ({params.get('trainable_pct', '?')}%)"])
    train = m.get("train") or {}
    rows += [[label, train[key]] for key, label in (("steps", "optimiser steps"), ("seconds", "training seconds"),
                                                     ("total_seconds", "total seconds"),
                                                     ("stopped_early", "stopped early")) if key in train]
    if isinstance(train.get("best"), dict):
        rows.append(["best evaluation at step", train["best"].get("step")])
    hardware = m.get("hardware") or {}
    rows += [[f"hardware: {k}", v] for k, v in hardware.items()]
    if "lmtune" in m:
        rows.append(["lmtune version", m["lmtune"]])
    return rows


def hyperparameter_rows(run: RunFiles) -> list[list]:
    train, method = run.section("train"), run.section("method")
    rows = [[k, train[k]] for k in TRAIN_KEYS if train.get(k) is not None]
    rows += [[k, method[k]] for k in METHOD_KEYS.get(method.get("name"), ()) if method.get(k) is not None]
    if "max_length" in run.section("data"):
        rows.append(["max_length (tokens)", run.section("data")["max_length"]])
    return rows


def data_table(run: RunFiles) -> dict | None:
    data = run.metrics.get("data") or {}
    counts = data.get("rows") or {}
    if not counts:
        return None
    sources, duplicates, leakage = data.get("sources") or {}, data.get("duplicates") or {}, data.get("leakage") or {}
    rows = [[split, n, sources.get(split, "-"), duplicates.get(split), leakage.get(split)]
            for split, n in counts.items()]
    return table(["split", "rows", "source", "duplicate rows", "texts also in train"], rows)


def label_table(run: RunFiles) -> dict | None:
    labels = (run.metrics.get("data") or {}).get("labels")
    if not isinstance(labels, dict) or not labels:
        return None
    total = sum(labels.values())
    return table(["label", "training rows", "share"], [[k, n, n / total] for k, n in labels.items()])


def metric_table(run: RunFiles, interval: dict | None) -> dict | None:
    """Scalar metrics (rows) by evaluated split (columns); the headline metric's bootstrap interval beside."""
    splits = run.eval_splits
    flat = {split: flat_metrics(run.metrics[split]) for split in splits}
    keys: list[str] = []
    for split in splits:
        keys += [k for k, v in flat[split].items() if is_number(v) and k not in keys]
    if not keys:
        return None
    columns = ["metric", *splits]
    if interval:
        columns.append(f"95% CI ({run.predictions_split})")
    rows = []
    for k in keys:
        row = [k, *[flat[s].get(k) for s in splits]]
        if interval:
            row.append(f"{interval['low']:.4f} - {interval['high']:.4f}" if k == interval["metric"] else "")
        rows.append(row)
    return table(columns, rows)


def flat_metrics(metrics: dict) -> dict:
    """One level of nesting shown as 'group.key' (e.g. sft's generated.rouge1)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def interval_sentence(run: RunFiles, interval: dict) -> str:
    return (f"{interval['metric']} on {run.predictions_split}: {interval['value']:.4f}, 95% bootstrap interval "
            f"{interval['low']:.4f} to {interval['high']:.4f} ({interval['n']:,} examples resampled 1,000 times).")


def baseline_table(run: RunFiles) -> dict | None:
    baselines = run.metrics.get("baselines") or {}
    split = run.predictions_split
    scored = {name: baselines[name][split] for name in BASELINE_NAMES if split in (baselines.get(name) or {})}
    model = run.metrics.get(split) or {}
    if not scored or not model:
        return None
    keys = [k for k in ("accuracy", "subset_accuracy", "f1_macro", "f1_micro") if k in model][:3]
    rows = [["fine-tuned model (this run)", *[model.get(k) for k in keys]]]
    rows += [[BASELINE_NAMES[name], *[values.get(k) for k in keys]] for name, values in scored.items()]
    return table(["model", *keys], rows, caption=f"{split} split; baselines fitted on this run's training split")


def lift_sentence(run: RunFiles) -> str | None:
    """The model's lift over each baseline it was paired with (TF-IDF, then the BiLSTM), in one paragraph."""
    baselines = run.metrics.get("baselines") or {}
    sentences = [_lift_text(baselines[key]) for key in LIFTS if baselines.get(key)]
    return " ".join(sentences) or None


def _lift_text(lift: dict) -> str:
    verdict = ("the interval excludes 0: a real improvement" if lift["low"] > 0 else
               "the interval excludes 0: the baseline is better" if lift["high"] < 0 else
               "the interval includes 0: not clearly better than the baseline")
    return (f"Lift over {BASELINE_NAMES.get(lift['over'], lift['over'])} on {lift['split']} {lift['metric']}: "
            f"{signed(lift['lift'])} (95% paired bootstrap interval {signed(lift['low'])} to {signed(lift['high'])}; "
            f"{verdict}).")


def eval_size(run: RunFiles) -> int | None:
    rows = (run.metrics.get("data") or {}).get("rows") or {}
    return rows.get(run.predictions_split) or len(run.predictions) or None


def limitations(run: RunFiles) -> list[str]:
    """Warnings a reader of the numbers should know, from the data report and the evaluation."""
    out = data_limitations(run.metrics.get("data") or {}, run.predictions_split, eval_size(run))
    lift = (run.metrics.get("baselines") or {}).get("lift")
    if lift and lift["low"] <= 0:
        out.append("The model is not clearly better than a TF-IDF + logistic regression baseline on this data.")
    return out


def data_limitations(data: dict, split: str, eval_rows: int | None) -> list[str]:
    """The warnings that follow from a data report alone (`split` of `eval_rows` rows scored): a run's report
    gives them, and `lmtune check` before any training."""
    out = []
    unknown = data.get("unknown_token_rate")
    if isinstance(unknown, int | float) and unknown > UNKNOWN_TOKEN_WARNING:
        out.append(f"{unknown:.1%} of the training tokens are unknown to the base model's tokenizer: it cannot read "
                   "much of this text (another script or language?), so expect weak results on such inputs"
                   + (f"; {data['reads_best']} reads it." if data.get("reads_best") else "."))
    if eval_rows is not None and eval_rows < SMALL_EVAL:
        out.append(f"The {split} set has only {eval_rows:,} examples: scores from a set this small move by several "
                   "points from sample to sample.")
    source = str((data.get("sources") or {}).get(split, ""))
    if source.startswith("split of"):
        out.append(f"Evaluated on a {source}, the same source as the training data: expect lower scores on text "
                   "from elsewhere (another domain, period or writer).")
    leaked = (data.get("leakage") or {}).get(split)
    if leaked:
        out.append(f"{leaked:,} {split} texts also occur in the training data, which inflates the {split} scores.")
    if data.get("label_conflicts"):
        out.append(f"{data['label_conflicts']:,} training texts appear with more than one label (label noise).")
    return out
