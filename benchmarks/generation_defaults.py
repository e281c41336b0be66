"""Greedy answers with and without a repetition penalty: how many loop, how close they come to the reference.

    .venv/bin/python benchmarks/generation_defaults.py [--models smollm2-135m runs/NAME ...] [--rows 50]
        [--penalties 1.0 1.1 1.2] [--out benchmarks/results]

Each model (a built-in name, HF folder or lmtune run) answers the last `rows` instructions of the Alpaca en and
zh sets (rows the example SFT runs hold out when trained on the first 900), greedily, once per penalty; 1.0 is
transformers' plain greedy search, the baseline in the same run. The penalty counts the answer's own tokens only
(lmtune's `Settings.repetition_penalty`). For each: the share of answers that loop
(`evaluation.generation.repeats_itself`), ROUGE-L against the reference answer, and seconds.
Writes generation_defaults.json and generation_defaults.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from shared_data import ALPACA, ALPACA_ZH, require

from lmtune.evaluation.generation import generation_metrics
from lmtune.generation.generate import Generator, Settings
from lmtune.trained.generator import load_generator


def held_out(path: Path, rows: int) -> tuple[list[str], list[str]]:
    records = json.loads(path.read_text(encoding="utf-8"))[-rows:]
    prompts = [f"{r['instruction']}\n{r['input']}".strip() for r in records]
    return prompts, [r["output"] for r in records]


def measure(generator: Generator, prompts: list[str], references: list[str], penalty: float,
            max_new_tokens: int) -> dict:
    started = time.perf_counter()
    answers = generator.generate([generator.prompt(p) for p in prompts],
                                 Settings(max_new_tokens=max_new_tokens, repetition_penalty=penalty))
    seconds = time.perf_counter() - started
    scores = generation_metrics(answers, references, ["rouge"])
    return {"loops_pct": scores["repeat_loops"], "rougeL": scores["rougeL"], "seconds": round(seconds, 1),
            "sample": answers[0][:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m"])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--penalties", type=float, nargs="+", default=[1.0, 1.1, 1.2])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    for path in (ALPACA, ALPACA_ZH):
        require(path)
    sets = {"en": held_out(ALPACA, args.rows), "zh": held_out(ALPACA_ZH, args.rows)}
    results = []
    for model in args.models:
        generator = load_generator(model)
        for language, (prompts, references) in sets.items():
            for penalty in args.penalties:
                result = {"model": model, "language": language, "penalty": penalty,
                          **measure(generator, prompts, references, penalty, args.max_new_tokens)}
                print(json.dumps(result, ensure_ascii=False), flush=True)
                results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation_defaults.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    lines = ["| model | language | penalty | answers that loop | ROUGE-L | seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['language']} | {r['penalty']} | {r['loops_pct']}% | {r['rougeL']} | "
              f"{r['seconds']} |" for r in results]
    (args.out / "generation_defaults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
