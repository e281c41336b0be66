"""Frozen-layer caching: `method: freeze` with the frozen layers run once (cached) or at every step (uncached).

    .venv/bin/python benchmarks/frozen_cache.py [--train-rows 4000] [--dev-rows 872] [--epochs 3] [--freeze-layers 4]
        [--repeats 2] [--seed 42] [--out benchmarks/results]

Both set-ups fine-tune minilm (6 layers) through `lmtune.api.train` on the same stratified SST-2 subset (read from
../shared/data/sst2 as benchmarks/train_speed.py reads it), with lmtune's default hyper-parameters, max_length 128,
one dev evaluation per epoch and the same config but for `method.cache_frozen`. Measured: training seconds with
evaluation taken out (the cached run's include computing the cache at its first step, also reported alone),
samples/s, dev accuracy after each epoch and of the returned model, peak RSS. Each run is a fresh subprocess of
this script, so peak RSS is its own. The set-ups alternate --repeats times and each reports its fastest run: on a
shared machine other jobs only ever add time, and alternating gives both set-ups the same chances. Writes
frozen_cache.json and frozen_cache.md to --out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch
from shared_data import SST2, require
from train_speed import cpu_model, peak_rss_mb, precision_name, run_subprocess, write_subsets

from lmtune.reporting.run_files import read_run

SETUPS = ("uncached", "cached")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=4000, help="stratified subset of SST-2 train")
    parser.add_argument("--dev-rows", type=int, default=872, help="stratified cap on the dev set")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--freeze-layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each set-up, alternating; the fastest counts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--only", choices=SETUPS, help=argparse.SUPPRESS)  # internal: one set-up, in a subprocess
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)  # internal: the subset files, run folders
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # internal: where the subprocess reports
    return parser.parse_args()


def run_one(args: argparse.Namespace) -> dict:
    from lmtune.api import train

    run = train({
        "name": f"frozen-{args.only}", "output_dir": str(args.data / "runs"),
        "data": {"train": str(args.data / "train.tsv"), "validation": str(args.data / "dev.tsv"),
                 "text_column": "sentence", "test_size": 0, "max_length": 128},
        "method": {"name": "freeze", "freeze_layers": args.freeze_layers, "cache_frozen": args.only == "cached"},
        "task": {"baselines": False},
        # save_every beyond the last step: no checkpoint at each evaluation, whose cost would blur the comparison
        "train": {"epochs": args.epochs, "seed": args.seed, "save_every": 10**9},
    })
    done = run.metrics["train"]
    seconds = done["seconds"] - done["eval_seconds"]
    rows = sum(run.metrics["data"]["labels"].values())  # the training rows lmtune kept after its checks
    log = read_run(run.path).log
    return {"precision": precision_name(run.config.train.precision), "steps": done["steps"],
            "train_seconds": round(seconds, 2), "eval_seconds": done["eval_seconds"],
            "train_rows": rows, "samples_per_s": round(rows * args.epochs / seconds, 1),
            "epoch_accuracy": [round(r["eval"]["accuracy"], 4) for r in log if "eval" in r],
            "final_accuracy": round(run.metrics["validation"]["accuracy"], 4), "frozen_cache": done["frozen_cache"],
            "peak_rss_mb": peak_rss_mb()}


def markdown(result: dict) -> str:
    rows = [f"| {name} | {s['precision']} | {s['train_seconds']} | {s['frozen_cache'].get('seconds', '-')} | "
            f"{s['samples_per_s']} | {' / '.join(map(str, s['epoch_accuracy']))} | {s['final_accuracy']} | "
            f"{s['peak_rss_mb']} |" for name, s in result["setups"].items()]
    cache = result["setups"]["cached"]["frozen_cache"]
    return (
        f"{result['train_rows']} SST-2 training rows x {result['epochs']} epochs, dev {result['dev_rows']} rows, "
        f"minilm, method freeze with freeze_layers {result['freeze_layers']} of 6, lmtune defaults (batch 32, "
        f"lr 1e-4), max_length 128; {result['cpu']}, {result['threads']} threads, torch {result['torch']}.\n\n"
        f"Training seconds leave evaluation out; the cached run's include computing the cache ({cache['seconds']} s "
        f"for {cache['examples']} examples, {cache['megabytes']} MB of {cache['storage']} states). Fastest of "
        f"{result['repeats']} alternating runs per set-up (every run's: train_seconds_all in the JSON).\n\n"
        "| set-up | precision | train s | of which cache s | samples/s | dev acc per epoch | final dev acc | "
        "peak RSS MB |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) +
        f"\n\ncached/uncached samples/s: {result['speedup']}x\n")


def main() -> None:
    args = parse_args()
    if args.only:
        args.result.write_text(json.dumps(run_one(args)))
        return
    require(SST2)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="frozen-cache-") as tmp:
        folder = Path(tmp)
        write_subsets(args, folder)
        runs = [run_subprocess(__file__, name, folder) for _ in range(args.repeats) for name in SETUPS]
    setups = {}
    for i, name in enumerate(SETUPS):
        mine = runs[i::len(SETUPS)]
        setups[name] = {**min(mine, key=lambda r: r["train_seconds"]),
                        "train_seconds_all": [r["train_seconds"] for r in mine]}
    result = {"command": shlex.join([sys.executable, *sys.argv]), "torch": torch.__version__, "cpu": cpu_model(),
              "threads": torch.get_num_threads(), "train_rows": args.train_rows, "dev_rows": args.dev_rows,
              "epochs": args.epochs, "freeze_layers": args.freeze_layers, "repeats": args.repeats, "seed": args.seed,
              "setups": setups,
              "speedup": round(setups["cached"]["samples_per_s"] / setups["uncached"]["samples_per_s"], 2)}
    (args.out / "frozen_cache.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "frozen_cache.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
