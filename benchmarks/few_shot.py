"""Few-shot classification: the SetFit-style task against plain fine-tuning, at k examples per class, over seeds.

    .venv/bin/python benchmarks/few_shot.py [--sets sst2,agnews] [--shots 8,16,64] [--seeds 1,2,3,4,5]
        [--model minilm] [--dev-rows 2000] [--out benchmarks/results]

For each set, k and seed, k training rows per class are drawn (seeded) from the training file; both methods train
on exactly those rows and are scored on the same held-out rows: SST-2's dev file (872 rows) and, for AG News (one
file only), the last --dev-rows rows of its shuffled training file, which no draw takes from. setfit: `--task
setfit`, 1 epoch over its pairs at lr 2e-5 (SetFit's defaults), batch 16. Plain fine-tuning: `--task
classification` (a new head on the same encoder), batch 16, whole epochs until at least 50 steps
(train.min_steps), lmtune's default lr 1e-4. Each is evaluated once, after its last step (no checkpoint chosen on
the dev rows); both without explanations or baselines, which would only add time. Writes few_shot.json and few_shot.md
(accuracy mean ± sample std over seeds) to --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from shared_data import AGNEWS, require, sst2

from lmtune.recipe import train

# Each method evaluates once, after its last step: choosing a checkpoint on the dev rows would favour the method
# that evaluates more often.
METHODS = {
    "setfit": {"task": {"name": "setfit", "explanations": 0, "baselines": False},
               "train": {"epochs": 1, "lr": 2e-5, "eval_every": 100_000}},
    "fine-tuning": {"task": {"name": "classification", "explanations": 0, "baselines": False},
                    "train": {"epochs": 1, "min_steps": 50, "eval_every": 100_000}},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="sst2,agnews")
    parser.add_argument("--shots", default="8,16,64")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--dev-rows", type=int, default=2000, help="AG News: held-out rows")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return parser.parse_args()


def pools(name: str, dev_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to draw training examples from, held-out rows), as text,label frames."""
    if name == "sst2":
        return sst2("train"), sst2("dev")
    require(AGNEWS)
    rows = pd.read_csv(AGNEWS, sep="\t", header=None, names=["text", "label"], quoting=3)
    rows = rows.sample(frac=1.0, random_state=0)
    return rows.iloc[:-dev_rows], rows.iloc[-dev_rows:]


def draw(pool: pd.DataFrame, shots: int, seed: int) -> pd.DataFrame:
    return pool.groupby("label", group_keys=False).sample(n=shots, random_state=seed).sample(frac=1.0,
                                                                                            random_state=seed)


def main() -> None:
    args = parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.sets.split(","):
            pool, dev = pools(name, args.dev_rows)
            dev_file = folder / f"{name}-dev.csv"
            dev[["text", "label"]].to_csv(dev_file, index=False)
            for shots in map(int, args.shots.split(",")):
                for seed in map(int, args.seeds.split(",")):
                    train_file = folder / f"{name}-{shots}-{seed}.csv"
                    draw(pool, shots, seed)[["text", "label"]].to_csv(train_file, index=False)
                    for method, settings in METHODS.items():
                        started = time.perf_counter()
                        run = train({"name": f"{name}-{shots}-{seed}-{method}", "output_dir": str(folder / "runs"),
                                     "model": {"name": args.model}, "task": settings["task"],
                                     "data": {"train": str(train_file), "validation": str(dev_file),
                                              "test_size": 0.0, "max_length": 128},
                                     "train": {"batch_size": 16, "seed": seed, **settings["train"]}})
                        accuracy = run.metrics["validation"]["accuracy"]
                        results.append({"set": name, "shots": shots, "seed": seed, "method": method,
                                        "accuracy": accuracy, "seconds": round(time.perf_counter() - started, 1),
                                        "steps": run.metrics["train"]["steps"]})
                        print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "few_shot.json").write_text(json.dumps({"model": args.model, "runs": results}, indent=1) + "\n")
    (args.out / "few_shot.md").write_text(table(results) + "\n")
    print(table(results))


def table(results: list[dict]) -> str:
    lines = ["| set | examples per class | setfit accuracy | fine-tuning accuracy | setfit s | fine-tuning s |",
             "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["set"] for r in results):
        for shots in dict.fromkeys(r["shots"] for r in results if r["set"] == name):
            cells = []
            for key in ("accuracy", "seconds"):
                for method in METHODS:
                    values = [r[key] for r in results if (r["set"], r["shots"], r["method"]) == (name, shots, method)]
                    cells.append(f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}" if key == "accuracy"
                                 else f"{np.mean(values):.0f}")
            lines.append(f"| {name} | {shots} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
