"""The built-in encoders on Chinese text: minilm, m3e-small and multilingual-e5-small on the same waimai rows.

    .venv/bin/python benchmarks/chinese_models.py [--train-rows 2000] [--dev-rows 800] [--epochs 1]
        [--models minilm,m3e-small,multilingual-e5-small] [--seed 42] [--out benchmarks/results]

Each model fine-tunes through `lmtune.api.train` with lmtune's defaults (batch 32, lr 1e-4, max_length 128) on
the same stratified subset of ../shared/data/waimai10k/train.csv and is scored on the same held-out rows (disjoint
from the training ones). Measured: training samples/s (evaluation taken out), held-out accuracy and macro-F1, the
share of [UNK] tokens, peak RSS. Each model runs in a fresh subprocess of this script, so peak RSS is its own;
ratios compare runs of one session only. Writes chinese_models.json and chinese_models.md to --out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
from shared_data import WAIMAI, require
from train_speed import cpu_model, peak_rss_mb, run_subprocess

from lmtune.data.splits import stratified_split

MODELS = ("minilm", "m3e-small", "multilingual-e5-small")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--dev-rows", type=int, default=800)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: one model, in a subprocess
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)  # internal: the subset files, run folders
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # internal: where the subprocess reports
    return parser.parse_args()


def write_subsets(args: argparse.Namespace, folder: Path) -> None:
    rows = pd.read_csv(WAIMAI)
    # The rows beyond train + dev go to the unused "test" split, so the two subsets are stratified and disjoint.
    unused = (len(rows) - args.train_rows - args.dev_rows) / len(rows)
    splits = stratified_split(rows, "label", args.dev_rows / len(rows), unused, args.seed)
    splits["train"].to_csv(folder / "train.csv", index=False)
    splits["validation"].to_csv(folder / "dev.csv", index=False)


def run_one(args: argparse.Namespace) -> dict:
    from lmtune.api import train

    run = train({
        "name": args.only, "output_dir": str(args.data / "runs"), "model": {"name": args.only},
        "data": {"train": str(args.data / "train.csv"), "validation": str(args.data / "dev.csv"),
                 "text_column": "review", "label_column": "label", "test_size": 0, "max_length": 128},
        "task": {"baselines": False},
        "train": {"epochs": args.epochs, "seed": args.seed, "save_every": 10**9},
    })
    done, metrics = run.metrics["train"], run.metrics["validation"]
    seconds = done["seconds"] - done["eval_seconds"]
    rows = run.metrics["data"]["rows"]["train"]
    return {"train_rows": rows, "train_seconds": round(seconds, 2),
            "samples_per_s": round(rows * args.epochs / seconds, 1),
            "accuracy": round(metrics["accuracy"], 4), "f1_macro": round(metrics["f1_macro"], 4),
            "unknown_token_rate": run.metrics["data"]["unknown_token_rate"],
            "parameters": run.metrics["params"]["total"], "peak_rss_mb": peak_rss_mb()}


def markdown(result: dict) -> str:
    base = result["models"].get("minilm", {}).get("samples_per_s")
    rows = [f"| {name} | {m['parameters']:,} | {m['samples_per_s']} | "
            f"{round(m['samples_per_s'] / base, 2) if base else '-'} | {m['accuracy']} | {m['f1_macro']} | "
            f"{m['unknown_token_rate']:.1%} | {m['peak_rss_mb']} |" for name, m in result["models"].items()]
    return (f"waimai10k, {result['train_rows']} training rows x {result['epochs']} epoch(s), {result['dev_rows']} "
            f"held-out rows, lmtune defaults (batch 32, lr 1e-4, max_length 128); {result['cpu']}, "
            f"{result['threads']} threads, torch {result['torch']}.\n\n"
            "| model | parameters | samples/s | vs minilm | accuracy | macro-F1 | [UNK] tokens | peak RSS MB |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def main() -> None:
    args = parse_args()
    if args.only:
        args.result.write_text(json.dumps(run_one(args)))
        return
    require(WAIMAI)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chinese-models-") as tmp:
        folder = Path(tmp)
        write_subsets(args, folder)
        models = {name: run_subprocess(__file__, name, folder) for name in args.models.split(",")}
    result = {"command": shlex.join([sys.executable, *sys.argv]), "torch": torch.__version__, "cpu": cpu_model(),
              "threads": torch.get_num_threads(), "train_rows": args.train_rows, "dev_rows": args.dev_rows,
              "epochs": args.epochs, "seed": args.seed, "models": models}
    (args.out / "chinese_models.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "chinese_models.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
