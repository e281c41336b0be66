"""Self-training on SST-2: a few hundred labelled rows plus many unlabelled ones, against the labelled rows alone.

    .venv/bin/python benchmarks/self_training.py [--labelled 500] [--unlabelled 20000] [--seeds 1,2,3]
        [--rounds 2] [--threshold 0.9] [--model minilm] [--out benchmarks/results]

Per seed: --labelled stratified SST-2 training rows (drawn with that seed) and --unlabelled other training sentences
with their labels dropped; `lmtune.api.self_train` trains round 0 on the labelled rows alone (the baseline) and
--rounds pseudo-labelled rounds. Every round is scored on SST-2's dev file (872 rows), which also picks each
run's best checkpoint and the kept round, as in lmtune's other SST-2 numbers. Each round trains 1 epoch, raised
to at least 50 steps (train.min_steps) for the small labelled set. Writes self_training.json and .md to --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from shared_data import labelled_and_unlabelled, sst2

from lmtune.api import self_train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labelled", type=int, default=500)
    parser.add_argument("--unlabelled", type=int, default=20000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sst2("dev").to_csv(folder / "dev.csv", index=False)  # the training files' columns: text, label
        for seed in map(int, args.seeds.split(",")):
            labelled, texts = labelled_and_unlabelled(args.labelled, args.unlabelled, seed)
            labelled.to_csv(folder / f"labelled-{seed}.csv", index=False)
            (folder / f"unlabelled-{seed}.txt").write_text("".join(t + "\n" for t in texts))
            run = self_train({"name": f"seed-{seed}", "output_dir": str(folder / "runs"),
                              "model": {"name": args.model},
                              "data": {"train": str(folder / f"labelled-{seed}.csv"),
                                       "unlabelled": str(folder / f"unlabelled-{seed}.txt"),
                                       "validation": str(folder / "dev.csv"), "test_size": 0.0, "max_length": 128},
                              "train": {"epochs": 1, "min_steps": 50, "seed": seed},
                              "task": {"explanations": 0, "self_training_rounds": args.rounds,
                                       "pseudo_label_threshold": args.threshold}})
            found = run.metrics["self_training"]
            per_seed.append({"seed": seed, "kept": found["kept"],
                             "rounds": [{k: r[k] for k in ("round", "pseudo_labels", "validation")}
                                        for r in found["rounds"]]})
            print(json.dumps(per_seed[-1]), flush=True)
    alone = [s["rounds"][0]["validation"] for s in per_seed]
    last = [s["rounds"][-1]["validation"] for s in per_seed]
    kept = [s["rounds"][s["kept"]]["validation"] for s in per_seed]
    summary = {name: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))}
               for name, v in (("labelled_alone", alone), ("last_round", last), ("kept_round", kept))}
    result = {"model": args.model, "labelled": args.labelled, "unlabelled": args.unlabelled,
              "threshold": args.threshold, "per_seed": per_seed, "summary": summary}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "self_training.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| dev accuracy over seeds | mean ± std |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {s['mean']:.4f} ± {s['std']:.4f} |" for name, s in summary.items()]
    lines += ["", "| seed | pseudo-labelled rows per round | dev accuracy per round |", "|---|---|---|"]
    for s in per_seed:
        counts = ", ".join(str(r["pseudo_labels"]) for r in s["rounds"])
        scores = ", ".join(f"{r['validation']:.4f}" for r in s["rounds"])
        lines.append(f"| {s['seed']} | {counts} | {scores} |")
    (args.out / "self_training.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
