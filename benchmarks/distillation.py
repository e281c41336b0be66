"""Distillation on SST-2: a teacher, its distilled student, and the student model trained on the labels alone.

    .venv/bin/python benchmarks/distillation.py [--teacher multilingual-e5-small] [--student minilm]
        [--teacher-folds 0] [--train-rows 8000] [--unlabelled-rows 20000] [--epochs 1] [--seed 42]
        [--out benchmarks/results]

The teacher fine-tunes on --train-rows stratified SST-2 training rows (with --teacher-folds K: K-fold
cross-validation over them, whose K fold models teach as an ensemble); the student (`lmtune.api.distill`) learns
from the teacher's probabilities on the same rows plus --unlabelled-rows other training sentences with their
labels dropped; the baseline is the student's model trained on the labelled rows alone with the same settings.
All three are scored on SST-2's dev file (872 rows). Sizes and prediction speed come from the distillation run,
which measures teacher and student one after the other on the same dev rows. Writes distillation.json and
distillation.md to --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from shared_data import labelled_and_unlabelled, sst2

from lmtune.api import cross_validate, distill, train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="multilingual-e5-small")
    parser.add_argument("--student", default="minilm")
    parser.add_argument("--teacher-folds", type=int, default=0, help="K > 1: an ensemble of K fold models teaches")
    parser.add_argument("--train-rows", type=int, default=8000)
    parser.add_argument("--unlabelled-rows", type=int, default=20000)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    labelled, texts = labelled_and_unlabelled(args.train_rows, args.unlabelled_rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sst2("dev").to_csv(folder / "dev.csv", index=False)  # the training files' columns: text, label
        labelled.to_csv(folder / "train.csv", index=False)
        (folder / "unlabelled.txt").write_text("".join(t + "\n" for t in texts))
        common = {"output_dir": str(folder / "runs"), "train": {"epochs": args.epochs, "seed": args.seed},
                  "data": {"train": str(folder / "train.csv"), "validation": str(folder / "dev.csv"),
                           "test_size": 0.0, "max_length": 128},
                  "task": {"explanations": 0}}
        teacher_config = {**common, "name": "teacher", "model": {"name": args.teacher}}
        if args.teacher_folds > 1:
            cross_validate({**teacher_config, "data": {**common["data"], "validation": None}}, folds=args.teacher_folds)
            teacher_path = folder / "runs" / "teacher"
        else:
            teacher_path = train(teacher_config).path
        alone = train({**common, "name": "alone", "model": {"name": args.student}})
        student = distill(teacher_path, {**common, "name": "student", "model": {"name": args.student},
                                         "data": {**common["data"], "unlabelled": str(folder / "unlabelled.txt")}})
        info = student.metrics["distillation"]
        # The distillation run scores the teacher (a fold ensemble: the averaged probabilities) on the dev rows.
        result = {"teacher": {"model": args.teacher, "folds": args.teacher_folds or 1,
                              "dev_accuracy": info["teacher"].pop("accuracy"), **info["teacher"]},
                  "student": {"model": args.student, "dev_accuracy": student.metrics["validation"]["accuracy"],
                              **info["student"]},
                  "student_on_labels_alone": {"dev_accuracy": alone.metrics["validation"]["accuracy"]},
                  "labelled_rows": args.train_rows, "unlabelled_rows": args.unlabelled_rows,
                  "temperature": info["temperature"], "alpha": info["alpha"], "epochs": args.epochs}
    speeds = [result[side]["predict_samples_per_s"] for side in ("student", "teacher")]
    result["speedup"] = round(speeds[0] / speeds[1], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distillation.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| model | dev accuracy | predict samples/s | parameters | MB |", "|---|---|---|---|---|"]
    for key in ("teacher", "student"):
        r = result[key]
        model = r["model"] + (f" ({r['folds']}-fold ensemble)" if r.get("folds", 1) > 1 else "")
        lines.append(f"| {key}: {model} | {r['dev_accuracy']:.4f} | {r['predict_samples_per_s']} | "
                     f"{r['parameters']:,} | {r['megabytes']} |")
    lines.append(f"| {args.student} on the labels alone | {result['student_on_labels_alone']['dev_accuracy']:.4f} "
                 "| | | |")
    (args.out / "distillation.md").write_text("\n".join(lines) + f"\n\nstudent/teacher speed: {result['speedup']}x\n")
    print("\n".join(lines), f"\nstudent/teacher speed: {result['speedup']}x")


if __name__ == "__main__":
    main()
