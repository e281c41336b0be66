"""fp32 vs bf16 on this machine: matmul roofline, lmtune training throughput and greedy decoding (smollm2-135m,
fp32, bf16 autocast, bf16 weights; batch 1 and 8), measured in one process.

    .venv/bin/python benchmarks/precision.py [--steps 40] [--out benchmarks/results]

Writes precision.json and precision.md. Ratios compare runs of the same session, never stored numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from shared_data import SST2, require

from lmtune.reporting.run_files import read_run


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def training_run(precision: str, steps: int, out: Path) -> dict:
    from lmtune.api import train

    run = train({
        "name": f"bench-{precision}", "output_dir": str(out / "runs"),
        "data": {"train": str(SST2 / "train.tsv"), "validation": str(SST2 / "dev.tsv"), "text_column": "sentence",
                 "max_train_rows": steps * 32, "test_size": 0, "max_length": 128},
        "task": {"baselines": False},
        "train": {"max_steps": steps, "batch_size": 32, "precision": precision, "log_every": steps},
    })
    log = read_run(run.path).log
    rates = [r for r in log if "samples_per_s" in r][-1]
    return {"precision": precision, "train_seconds": run.metrics["train"]["seconds"],
            "samples_per_s": round(steps * 32 / run.metrics["train"]["seconds"], 1),
            "last_interval_tokens_per_s": rates["tokens_per_s"],
            "dev_accuracy": round(run.metrics["validation"]["accuracy"], 4)}


def decoding(batch: int, tokens: int = 32) -> dict:
    """Greedy tokens/s of smollm2-135m: one token per row per step, so every step reads all the weights."""
    from lmtune.generation.generate import Settings
    from lmtune.trained.generator import load_generator

    generator = load_generator("smollm2-135m", precision="fp32")
    prompts = [generator.prompt(f"Write a sentence about the number {i}.") for i in range(batch)]
    out = {}
    for name, precision, dtype in (("fp32", "fp32", torch.float32), ("bf16 autocast", "bf16", torch.float32),
                                   ("bf16 weights", "fp32", torch.bfloat16)):
        generator.model.to(dtype)
        generator.precision = precision
        generator.generate(prompts, Settings(max_new_tokens=4), batch)  # warm-up
        start = time.perf_counter()
        generator.generate(prompts, Settings(max_new_tokens=tokens), batch)
        out[name] = round(batch * tokens / (time.perf_counter() - start), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    require(SST2)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "threads": torch.get_num_threads(),
        "matmul_gflops": {name: round(matmul_gflops(dtype), 1)
                          for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))},
        "training": [training_run(p, args.steps, args.out) for p in ("fp32", "bf16")],
        "decoding_tokens_per_s": {f"batch {b}": decoding(b) for b in (1, 8)},
    }
    fp32, bf16 = result["training"]
    result["bf16_speedup"] = {"matmul": round(result["matmul_gflops"]["bf16"] / result["matmul_gflops"]["fp32"], 2),
                              "training": round(bf16["samples_per_s"] / fp32["samples_per_s"], 2)}
    (args.out / "precision.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [f"| {r['precision']} | {r['samples_per_s']} | {r['train_seconds']} | {r['dev_accuracy']} |"
            for r in result["training"]]
    table = "\n".join(["| precision | train samples/s | train s | dev accuracy |", "|---|---|---|---|", *rows])
    (args.out / "precision.md").write_text(
        f"matmul GFLOP/s: fp32 {result['matmul_gflops']['fp32']}, bf16 {result['matmul_gflops']['bf16']} "
        f"({result['bf16_speedup']['matmul']}x)\n\n{table}\n\nbf16 training speed-up: "
        f"{result['bf16_speedup']['training']}x\n\ngreedy decoding, smollm2-135m, tokens/s: "
        f"{json.dumps(result['decoding_tokens_per_s'])}\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
