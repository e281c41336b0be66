"""Training speed: lmtune against the Hugging Face Trainer, same model, data and hyper-parameters, one session.

    .venv/bin/python benchmarks/train_speed.py [--train-rows 8000] [--epochs 1] [--eval-every 25] [--target 0.88]
        [--dev-rows N] [--seed 42] [--out benchmarks/results]

Every set-up fine-tunes minilm (BertForSequenceClassification, 2 labels) on the same stratified subset of SST-2
train (read from ../shared/data/sst2), max_length 128, batch 32, AdamW lr 1e-4, linear schedule with 6% warm-up,
weight decay 0.01, and evaluates dev accuracy every --eval-every steps and after the last step:

- hf-classic: `transformers.Trainer`, rows padded to max_length 128, default TrainingArguments (fp32, random order);
- hf-best: `Trainer` with dynamic padding, length-grouped batches and bf16 autocast where the CPU has fast bf16
  (the same test lmtune uses);
- lmtune: `lmtune.api.train` with its defaults, which are these hyper-parameters;
- lmtune:NAME (`--variant NAME:key=value[,key=value]`, repeatable): lmtune with config overrides, to measure
  one speed choice on its own against the defaults in the same session (e.g.
  `--variant dense-embeddings:train.sparse_embeddings=false`).

Measured per set-up: training seconds with evaluation taken out (evaluation seconds reported beside them),
samples/s, tokens/s (real, non-padding tokens), seconds of training until dev accuracy first reaches --target,
accuracy, peak RSS, and the share of the matmul roofline achieved (6 x non-embedding parameters x real tokens
per second, over the measured matmul GFLOP/s of the set-up's precision). For the lmtune model, prediction
throughput of `lmtune.api.Predictor` against `transformers.pipeline` on the dev sentences.

Each set-up runs in a fresh subprocess of this script (`--only NAME`, internal) so peak RSS is its own and no
set-up warms another's caches. Ratios are computed between runs of one session only: absolute speed on a shared
machine moves with load, clocks and thread counts from one session to the next, and only runs measured side by
side share those conditions. Writes train_speed.json and train_speed.md to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import transformers
from precision import matmul_gflops
from shared_data import SST2, require
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

from lmtune.data.clean import clean_string
from lmtune.data.splits import stratified_sample
from lmtune.models import resolve
from lmtune.reporting.run_files import read_run
from lmtune.training.device import resolve_precision

MODEL = "minilm"
MAX_LENGTH, BATCH, EVAL_BATCH, PREDICT_BATCH = 128, 32, 128, 64
LR, WARMUP, WEIGHT_DECAY = 1e-4, 0.06, 0.01
SETUPS = ("hf-classic", "hf-best", "lmtune")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=8000, help="stratified subset of SST-2 train")
    parser.add_argument("--dev-rows", type=int, default=None,
                        help="stratified cap on the dev set, for smoke runs; default all (the shared dev.tsv has "
                        "6,735 rows, carved out of GLUE train: not GLUE's 872-row dev)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=25, help="optimiser steps between dev evaluations")
    parser.add_argument("--target", type=float, default=0.88, help="dev accuracy for time-to-target")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help="comma-separated subset to run (lmtune always runs: the ratios are against it)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                        help="an extra lmtune set-up with these config overrides (repeatable)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: one set-up, in a subprocess
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)  # internal: the subset files, run folders
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # internal: where the subprocess reports
    return parser.parse_args()


# -- data ------------------------------------------------------------------------------------------------------
def read_tsv(path: Path) -> pd.DataFrame:
    # SST-2 carries bare quote characters, so no quote processing (as lmtune reads TSV).
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)


def write_subsets(args: argparse.Namespace, folder: Path) -> None:
    """The rows every set-up trains and evaluates on, written once so all three read identical files. Text is
    cleaned the way lmtune cleans it, so lmtune's own clean-up changes nothing and the Trainer sees the same text."""
    for name, rows in (("train", args.train_rows), ("dev", args.dev_rows)):
        table = read_tsv(SST2 / f"{name}.tsv")
        table["sentence"] = [clean_string(text) for text in table["sentence"]]
        if rows:
            table = stratified_sample(table, "label", rows, args.seed)
        table.to_csv(folder / f"{name}.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)


def data_and_model_stats(folder: Path, epochs: int) -> dict:
    path = resolve(MODEL)
    train = read_tsv(folder / "train.tsv")
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(path)(
        train["sentence"].tolist(), truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(p.numel() for p in model.base_model.embeddings.parameters())
    return {"train_rows": len(train), "dev_rows": len(read_tsv(folder / "dev.tsv")), "epochs": epochs,
            "real_tokens": sum(lengths) * epochs, "padded_tokens": len(lengths) * MAX_LENGTH * epochs,
            "parameters": total, "non_embedding_parameters": total - embeddings}


# -- one set-up, in its own process ----------------------------------------------------------------------------
def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def hf_setup(best: bool, args: argparse.Namespace) -> dict:
    # Imported here so the lmtune subprocess does not carry the Trainer in its peak RSS.
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from lmtune.training.device import cpu_has_fast_bf16

    path = resolve(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)

    def encode(file: str) -> Dataset:
        table = read_tsv(args.data / file)
        enc = tokenizer(table["sentence"].tolist(), truncation=True, max_length=MAX_LENGTH,
                        padding=False if best else "max_length")
        return Dataset.from_dict({**enc, "labels": [int(y) for y in table["label"]]})

    train_set, dev_set = encode("train.tsv"), encode("dev.tsv")
    set_seed(args.seed)  # the new head's initial weights depend on it, as in lmtune
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    bf16 = best and cpu_has_fast_bf16()
    steps = math.ceil(len(train_set) / BATCH) * args.epochs
    training_args = TrainingArguments(
        output_dir=str(args.data / "hf"), per_device_train_batch_size=BATCH, learning_rate=LR,
        lr_scheduler_type="linear", warmup_steps=math.ceil(WARMUP * steps),  # lmtune's rounding of the 6%
        weight_decay=WEIGHT_DECAY, num_train_epochs=args.epochs, seed=args.seed, eval_strategy="steps",
        eval_steps=args.eval_every, per_device_eval_batch_size=EVAL_BATCH,  # lmtune's; eval time is reported apart
        save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, bf16=bf16,
        train_sampling_strategy="group_by_length" if best else "random")
    clock = TrainClock()
    # DataCollatorWithPadding is the Trainer's default for a tokenizer; on max_length rows it adds no padding.
    trainer = Trainer(model=model, args=training_args, train_dataset=train_set, eval_dataset=dev_set,
                      processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=accuracy, callbacks=[clock])
    trainer.train()
    if not clock.evals or clock.evals[-1]["step"] != trainer.state.global_step:
        clock.final_eval(trainer)  # as lmtune does: the final weights are always scored
    return {"precision": "bf16" if bf16 else "fp32", "steps": trainer.state.global_step,
            "train_seconds": round(clock.seconds, 2), "evals": clock.evals,
            "final_accuracy": clock.evals[-1]["accuracy"], "peak_rss_mb": peak_rss_mb()}


def accuracy(prediction) -> dict:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def precision_name(choice: str) -> str:
    return "bf16" if resolve_precision(choice) == "bf16" else "fp32"


class TrainClock(TrainerCallback):
    """Training seconds without evaluation: an evaluation runs right after the step that triggers it, so the time
    from that step's end to the evaluation's end is evaluation, and the training clock stops for it."""

    def __init__(self) -> None:
        self.evals: list[dict] = []
        self.start = self.step_end = 0.0
        self.paused = 0.0
        self.seconds: float | None = None

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.start = self.step_end = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.step_end = time.perf_counter()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
        if self.seconds is None:  # evaluations after training are timed by final_eval
            self._record(state.global_step, metrics["eval_accuracy"], self.step_end - self.start - self.paused,
                         time.perf_counter() - self.step_end)

    def on_train_end(self, args, state, control, **kwargs) -> None:
        self.seconds = time.perf_counter() - self.start - self.paused

    def final_eval(self, trainer) -> None:
        started = time.perf_counter()
        score = trainer.evaluate()["eval_accuracy"]
        self._record(trainer.state.global_step, score, self.seconds, time.perf_counter() - started)

    def _record(self, step: int, score: float, train_seconds: float, eval_seconds: float) -> None:
        self.evals.append({"step": step, "accuracy": round(score, 4), "train_seconds": round(train_seconds, 2),
                           "eval_seconds": round(eval_seconds, 2)})
        self.paused += eval_seconds


def variants(args: argparse.Namespace) -> dict[str, list[str]]:
    """Set-up name -> lmtune config overrides; the plain `lmtune` set-up has none."""
    out = {"lmtune": []}
    for text in args.variant:
        name, _, overrides = text.partition(":")
        if not overrides or "=" not in overrides:
            raise SystemExit(f"--variant {text!r}: expected NAME:key=value[,key=value]")
        out[f"lmtune:{name}"] = overrides.split(",")
    return out


def lmtune_setup(args: argparse.Namespace, overrides: list[str]) -> dict:
    from lmtune.api import train
    from lmtune.config import build_config

    run = train(build_config({
        "name": "train-speed", "output_dir": str(args.data / "runs"),
        "data": {"train": str(args.data / "train.tsv"), "validation": str(args.data / "dev.tsv"),
                 "text_column": "sentence", "test_size": 0, "max_length": MAX_LENGTH},
        "task": {"baselines": False},
        # save_every beyond the last step turns off lmtune's checkpoint at each evaluation, as save_strategy="no"
        # does for the Trainer; its best-weights copy at each improvement is counted with the evaluations.
        "train": {"epochs": args.epochs, "seed": args.seed, "eval_every": args.eval_every, "save_every": 10**9},
    }, overrides))
    if not overrides:
        check_lmtune_defaults(run.config.train)
    evals = lmtune_evals(read_run(run.path).log)
    result = {"precision": precision_name(run.config.train.precision),
              "steps": run.metrics["train"]["steps"],
              "train_seconds": round(run.metrics["train"]["seconds"] - run.metrics["train"]["eval_seconds"], 2),
              "evals": evals, "final_accuracy": round(run.metrics["validation"]["accuracy"], 4),
              "peak_rss_mb": peak_rss_mb()}  # before prediction, which loads two more copies of the model
    if not overrides:  # prediction speed does not depend on how the model was trained
        result["prediction"] = prediction_throughput(run.path, read_tsv(args.data / "dev.tsv")["sentence"].tolist())
    return result


def check_lmtune_defaults(cfg) -> None:
    """The comparison is only like for like while lmtune's defaults are the benchmark's hyper-parameters."""
    expected = {"batch_size": BATCH, "lr": LR, "scheduler": "linear", "warmup": WARMUP,
                "weight_decay": WEIGHT_DECAY, "optimizer": "adamw", "grad_accum": 1}
    changed = {k: getattr(cfg, k) for k, v in expected.items() if getattr(cfg, k) != v}
    if changed:
        raise SystemExit(f"lmtune's training defaults changed ({changed}); update this benchmark's set-ups")


def lmtune_evals(log: list[dict]) -> list[dict]:
    """Each evaluation's accuracy at the training clock lmtune logs with it (evaluations left out)."""
    return [{"step": r["step"], "accuracy": round(r["eval"]["accuracy"], 4), "train_seconds": r["train_seconds"],
             "eval_seconds": r["eval_seconds"]} for r in log if "eval" in r]


def prediction_throughput(run_path: Path, sentences: list[str]) -> dict:
    """Predictor against the stock pipeline on the same saved model folder; one warm-up batch each, so
    one-off start-up costs are not counted."""
    from transformers import pipeline

    from lmtune.api import Predictor

    predictor = Predictor(run_path)
    pipe = pipeline("text-classification", model=str(run_path / "model"), batch_size=PREDICT_BATCH, device="cpu")
    ours, ours_s = timed(lambda texts: predictor.predict(texts, batch_size=PREDICT_BATCH), sentences)
    theirs, theirs_s = timed(lambda texts: pipe(texts, truncation=True), sentences)
    same = sum(a["label"] == b["label"] for a, b in zip(ours, theirs, strict=True))
    return {"rows": len(sentences), "batch_size": PREDICT_BATCH,
            "lmtune_precision": precision_name(predictor.task.precision),
            "lmtune_samples_per_s": round(len(sentences) / ours_s, 1),
            "pipeline_samples_per_s": round(len(sentences) / theirs_s, 1),
            "lmtune/pipeline": round(theirs_s / ours_s, 2), "label_agreement": round(same / len(sentences), 4)}


def timed(predict: Callable[[list[str]], list[dict]], texts: list[str]) -> tuple[list[dict], float]:
    predict(texts[:PREDICT_BATCH])
    started = time.perf_counter()
    out = predict(texts)
    return out, time.perf_counter() - started


def run_one(args: argparse.Namespace) -> None:
    lmtune = variants(args)
    result = lmtune_setup(args, lmtune[args.only]) if args.only in lmtune else hf_setup(args.only == "hf-best", args)
    result["eval_seconds"] = round(sum(e["eval_seconds"] for e in result["evals"]), 2)
    args.result.write_text(json.dumps(result))


def run_subprocess(script: str, name: str, folder: Path) -> dict:
    """`script` run again with this run's arguments plus the internal --only/--data/--result, for one set-up."""
    result = folder / f"{name}.json"
    command = [sys.executable, script, *sys.argv[1:], "--only", name, "--data", str(folder), "--result", str(result)]
    subprocess.run(command, check=True)
    return json.loads(result.read_text())


# -- summary ---------------------------------------------------------------------------------------------------
def summarise(setup: dict, stats: dict, gflops: dict, target: float) -> dict:
    seconds = setup["train_seconds"]
    reached = next((e for e in setup["evals"] if e["accuracy"] >= target), None)
    # 6 FLOPs per parameter per token (forward + backward), attention's own FLOPs left out: a lower bound.
    achieved = 6 * stats["non_embedding_parameters"] * stats["real_tokens"] / seconds / 1e9
    out = {
        "precision": setup["precision"], "steps": setup["steps"], "train_seconds": seconds,
        "eval_seconds": setup["eval_seconds"],
        "samples_per_s": round(stats["train_rows"] * stats["epochs"] / seconds, 1),
        "tokens_per_s": round(stats["real_tokens"] / seconds),
        "achieved_gflops": round(achieved, 1), "roofline_fraction": round(achieved / gflops[setup["precision"]], 4),
        "time_to_target_s": reached["train_seconds"] if reached else None,
        "steps_to_target": reached["step"] if reached else None,
        "final_accuracy": setup["final_accuracy"], "last_eval_accuracy": setup["evals"][-1]["accuracy"],
        "best_eval_accuracy": max(e["accuracy"] for e in setup["evals"]), "peak_rss_mb": setup["peak_rss_mb"],
        "evals": setup["evals"],
    }
    if "prediction" in setup:
        out["prediction"] = setup["prediction"]
    return out


def ratios(setups: dict) -> dict:
    """Throughput ratio above 1 and time-to-target ratio below 1 both mean the first set-up is faster."""
    pairs = [(name, "lmtune") for name in setups if name.startswith("lmtune:")]  # each variant against the defaults
    pairs += [("lmtune", other) for other in ("hf-best", "hf-classic") if other in setups]
    return {f"{a}/{b}": pair_ratio(setups[a], setups[b]) for a, b in pairs}


def pair_ratio(first: dict, second: dict) -> dict:
    reached = first["time_to_target_s"] is not None and second["time_to_target_s"] is not None
    return {"samples_per_s": round(first["samples_per_s"] / second["samples_per_s"], 2),
            "time_to_target": round(first["time_to_target_s"] / second["time_to_target_s"], 2) if reached else None,
            "final_accuracy": round(first["final_accuracy"] - second["final_accuracy"], 4)}


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def markdown(result: dict) -> str:
    target, setups = result["target_accuracy"], result["setups"]
    rows = []
    for name, s in setups.items():
        ttt = f"{s['time_to_target_s']} (step {s['steps_to_target']})" if s["time_to_target_s"] is not None else "never"
        rows.append(f"| {name} | {s['precision']} | {s['samples_per_s']} | {s['tokens_per_s']} | {ttt} | "
                    f"{s['eval_seconds']} | {s['final_accuracy']} | {s['peak_rss_mb']} | "
                    f"{s['roofline_fraction']:.1%} |")
    table = "\n".join([f"| set-up | precision | samples/s | tokens/s | s to dev acc {target} | eval s | "
                       "final dev acc | peak RSS MB | roofline |", "|---|---|---|---|---|---|---|---|---|", *rows])
    ratio_rows = [f"| {pair} | {r['samples_per_s']} | {'-' if r['time_to_target'] is None else r['time_to_target']} | "
                  f"{r['final_accuracy']:+.4f} |" for pair, r in result["ratios"].items()]
    ratio_table = "\n".join(["| A/B | samples/s (>1: A faster) | time to target (<1: A faster) | final acc A - B |",
                             "|---|---|---|---|", *ratio_rows])
    p, d, pad = setups["lmtune"]["prediction"], result["data"], result["hf_classic_padding"]
    variants = "".join(f"\n{name}: {', '.join(overrides)}." for name, overrides in result["variants"].items())
    return (
        f"{d['train_rows']} SST-2 training rows x {d['epochs']} epoch(s), dev {d['dev_rows']} rows, minilm, "
        f"batch {BATCH}, max_length {MAX_LENGTH}; {result['cpu']}, {result['threads']} threads, torch "
        f"{result['torch']}, transformers {result['transformers']}.\n\n"
        f"matmul GFLOP/s: fp32 {result['matmul_gflops']['fp32']}, bf16 {result['matmul_gflops']['bf16']}. "
        "Roofline = 6 x non-embedding parameters x real tokens/s over the matmul GFLOP/s of the set-up's "
        "precision. Seconds are training seconds, evaluation excluded. Final dev acc is the returned model's: "
        "lmtune restores its best evaluation, the Trainer keeps the last weights (JSON: last_eval/best_eval).\n\n"
        f"{table}\n{variants}\n\n{ratio_table}\n\n"
        f"hf-classic padding: {pad['tokens_processed']} tokens processed for {pad['real_tokens']} real ones "
        f"({pad['padding_share']:.0%} padding).\n\n"
        f"Prediction on {p['rows']} dev sentences, batch {p['batch_size']}: lmtune Predictor ({p['lmtune_precision']}) "
        f"{p['lmtune_samples_per_s']} samples/s, transformers pipeline {p['pipeline_samples_per_s']} samples/s "
        f"({p['lmtune/pipeline']}x; same label on {p['label_agreement']:.1%} of rows).\n")


def main() -> None:
    args = parse_args()
    if args.only:
        run_one(args)
        return
    require(SST2)
    args.out.mkdir(parents=True, exist_ok=True)
    # Measured first, while nothing else of this benchmark runs.
    gflops = {name: round(matmul_gflops(dtype), 1) for name, dtype in (("fp32", torch.float32),
                                                                       ("bf16", torch.bfloat16))}
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        folder = Path(tmp)
        write_subsets(args, folder)
        stats = data_and_model_stats(folder, args.epochs)
        chosen = [name for name in SETUPS if name in {*args.setups.split(","), "lmtune"}] + list(variants(args))[1:]
        raw = {name: run_subprocess(__file__, name, folder) for name in chosen}
    setups = {name: summarise(raw[name], stats, gflops, args.target) for name in chosen}
    result = {
        "command": shlex.join([sys.executable, *sys.argv]), "torch": torch.__version__,
        "transformers": transformers.__version__, "cpu": cpu_model(), "threads": torch.get_num_threads(),
        "target_accuracy": args.target, "eval_every": args.eval_every, "seed": args.seed, "data": stats,
        "matmul_gflops": gflops, "setups": setups, "ratios": ratios(setups),
        "variants": {name: overrides for name, overrides in variants(args).items() if overrides},
        "hf_classic_padding": {"tokens_processed": stats["padded_tokens"], "real_tokens": stats["real_tokens"],
                               "padding_share": round(1 - stats["real_tokens"] / stats["padded_tokens"], 4)},
    }
    (args.out / "train_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "train_speed.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
