"""Training tokens/s of LoRA SFT with and without sequence packing, measured in one process.

    .venv/bin/python benchmarks/packing.py [--rows 200] [--model smollm2-135m] [--out benchmarks/results]

Both runs train one epoch over the same Alpaca rows (`../shared/data/instruct/alpaca_en_demo.json`) with the
same settings; "off" pads each batch of length-grouped chats to its longest, "on" packs chats into
max_length rows (batch_size then counts rows, so each step holds more chats and there are fewer steps).
Tokens are real (non-padding) tokens, so the ratio is the speed-up a user sees.
Writes packing.json and packing.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared_data import ALPACA

from lmtune.reporting.run_files import read_run


def run(packing: bool, args: argparse.Namespace) -> dict:
    from lmtune.api import train

    result = train({
        "name": f"packing-{'on' if packing else 'off'}", "output_dir": str(args.out / "runs"),
        "model": {"name": args.model},
        "task": {"name": "sft", "packing": packing, "generate_samples": 0},
        "data": {"train": str(ALPACA), "max_train_rows": args.rows, "validation_size": 0, "test_size": 0,
                 "max_length": args.max_length},
        "train": {"epochs": 1, "batch_size": args.batch_size, "log_every": 10_000},
    })
    log = read_run(result.path).log
    rates = [r for r in log if "tokens_per_s" in r][-1]  # one record: the whole epoch
    return {"packing": packing, "steps": result.metrics["train"]["steps"],
            "train_seconds": result.metrics["train"]["seconds"], "tokens_per_s": rates["tokens_per_s"],
            "rows_per_step": args.batch_size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    results = [run(False, args), run(True, args)]
    speedup = round(results[1]["tokens_per_s"] / results[0]["tokens_per_s"], 2)
    report = {"command": vars(args) | {"out": str(args.out)}, "results": results, "speedup": speedup}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "packing.json").write_text(json.dumps(report, indent=2))
    lines = ["| packing | steps | train s | tokens/s |", "|---|---|---|---|"]
    lines += [f"| {'on' if r['packing'] else 'off'} | {r['steps']} | {r['train_seconds']} | {r['tokens_per_s']} |"
              for r in results]
    (args.out / "packing.md").write_text("\n".join(lines) + f"\n\npacking speed-up: {speedup}x\n")
    print("\n".join(lines), f"\npacking speed-up: {speedup}x")


if __name__ == "__main__":
    main()
