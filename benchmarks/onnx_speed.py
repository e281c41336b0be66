"""PyTorch vs ONNX Runtime (fp32 and int8) for a trained SST-2 classifier: dev accuracy and prediction speed.

    .venv/bin/python benchmarks/onnx_speed.py [--run PATH] [--train-rows 2000] [--dev-rows 2000]
                                              [--batch-size 64] [--out benchmarks/results]

Trains a minilm run on SST-2 (or reuses --run), exports it with int8 quantisation, then predicts the same dev
rows with each runtime through the task's own predict code (tokenisation included), one after another in one
process with the same threads and batch size. Writes onnx_speed.json and onnx_speed.md; compare speeds within
one file only, never across sessions or machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from shared_data import SST2, require


def train_run(rows: int, out: Path) -> Path:
    from lmtune.api import train

    run = train({
        "name": "onnx-speed", "output_dir": str(out / "runs"),
        "data": {"train": str(SST2 / "train.tsv"), "text_column": "sentence", "max_train_rows": rows,
                 "validation_size": 0, "test_size": 0, "max_length": 128},
        "task": {"baselines": False},
        "train": {"epochs": 1, "batch_size": 32},
    })
    return run.path


def dev_rows(n: int) -> pd.DataFrame:
    """A seeded sample of the dev file, numbered from 1 like Predictor's rows."""
    dev = pd.read_csv(SST2 / "dev.tsv", sep="\t", quoting=csv.QUOTE_NONE)  # sentences hold bare quote marks
    dev = dev.sample(min(n, len(dev)), random_state=0)
    rows = pd.DataFrame({"text": dev["sentence"].str.strip().tolist(), "gold": dev["label"].astype(str).tolist()})
    rows.index = range(1, len(rows) + 1)
    return rows


def predictors(run: Path, folder: Path) -> dict[str, Callable[[pd.DataFrame, int], list[dict]]]:
    """Each runtime as rows → records. The ONNX ones go through the task code exactly as Predictor would."""
    from lmtune.api import Predictor
    from lmtune.config import ModelConfig
    from lmtune.models.load import load_tokenizer
    from lmtune.tasks import saved_task
    from lmtune.trained.onnx_model import load_onnx_model

    def onnx(variant: str):
        task, model = saved_task(folder), load_onnx_model(folder, variant)
        tokenizer = load_tokenizer(str(folder), ModelConfig(name=str(folder)))
        return lambda rows, batch: task.predict(model, tokenizer, rows, batch)

    return {"pytorch (default precision)": Predictor(run).predict,
            "pytorch fp32": Predictor(run, precision="fp32").predict,
            "onnx fp32": onnx("fp32"), "onnx int8": onnx("int8")}


def measure(predict: Callable, rows: pd.DataFrame, batch: int) -> tuple[dict, list[str]]:
    predict(rows[["text"]].iloc[:batch], batch)  # warm-up: first-call allocations stay out of the timing
    start = time.perf_counter()
    labels = [r["label"] for r in predict(rows[["text"]], batch)]
    seconds = time.perf_counter() - start
    accuracy = sum(p == g for p, g in zip(labels, rows["gold"], strict=True)) / len(rows)
    return {"accuracy": round(accuracy, 4), "seconds": round(seconds, 2),
            "samples_per_s": round(len(rows) / seconds, 1)}, labels


def markdown(result: dict) -> str:
    rows = [f"| {name} | {r['accuracy']} | {r['samples_per_s']} | {r['speedup']}x | {r['agreement_with_fp32']} |"
            for name, r in result["runtimes"].items()]
    sizes = ", ".join(f"{k} {v} MB" for k, v in result["model_mb"].items())
    return "\n".join([
        f"SST-2 dev, {result['dev_rows']} rows, batch {result['batch_size']}, {result['threads']} threads "
        f"(torch {result['torch']}, onnxruntime {result['onnxruntime']}); run {result['run']}", "",
        "| runtime | accuracy | samples/s | vs pytorch default | same label as pytorch fp32 |",
        "|---|---|---|---|---|", *rows, "",
        f"Model files: {sizes}. Export took {result['export_seconds']} s.", ""])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="An SST-2 classification run to reuse instead of training one.")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--dev-rows", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    require(SST2)
    import onnxruntime

    from lmtune.serving.onnx_export import export_onnx

    args.out.mkdir(parents=True, exist_ok=True)
    run = args.run or train_run(args.train_rows, args.out)
    start = time.perf_counter()
    folder = export_onnx(run, quantize=True)
    export_seconds = round(time.perf_counter() - start, 1)
    rows = dev_rows(args.dev_rows)
    runtimes, labels = {}, {}
    for name, predict in predictors(run, folder).items():
        runtimes[name], labels[name] = measure(predict, rows, args.batch_size)
    base = runtimes["pytorch (default precision)"]["samples_per_s"]
    for name, r in runtimes.items():
        r["speedup"] = round(r["samples_per_s"] / base, 2)
        r["agreement_with_fp32"] = round(sum(a == b for a, b in zip(labels[name], labels["pytorch fp32"],
                                                                      strict=True)) / len(rows), 4)
    result = {"run": str(run), "dev_rows": len(rows), "batch_size": args.batch_size,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
              "export_seconds": export_seconds, "parity": json.loads((folder / "onnx.json").read_text())["parity"],
              "model_mb": {f.name: round(f.stat().st_size / 1e6, 1) for f in sorted(folder.glob("*.onnx"))},
              "runtimes": runtimes}
    (args.out / "onnx_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "onnx_speed.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
