"""Tokenisation cache: seconds to encode a split against seconds to load it from the cache, in one process.

    .venv/bin/python benchmarks/token_cache.py [--repeats 3] [--out benchmarks/results]

Cases: (a) SST-2's whole train file (../shared/data/sst2/train.tsv, `sentence` column) as classification with
minilm's tokenizer; (b) the Alpaca demo chats (../shared/data/instruct/alpaca_en_demo.json) as sft with
smollm2-135m's tokenizer (chat template rendered, assistant spans found). Rows come from the task's own load(),
as `lmtune train` reads them, all of them in the train split. Timed, best of --repeats:
- encode: `task.encode` alone, what every run paid before the cache;
- first run: `cached_encode` on an empty cache (key, encode, exactness check, write);
- hit: `cached_encode` loading the file (key included), what a re-run, trial, resume or fold seen before pays.
The cache lives in a temporary folder. Writes token_cache.json and token_cache.md to --out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from shared_data import SHARED, require

from lmtune.config import build_config
from lmtune.data.token_cache import cache_key, cached_encode
from lmtune.io import write_json, write_text
from lmtune.models import resolve
from lmtune.models.load import load_tokenizer
from lmtune.tasks import new_task

CASES = {
    "sst2-train / minilm": {"data": {"train": str(SHARED / "sst2" / "train.tsv"), "text_column": "sentence"},
                            "model": {"name": "minilm"}},
    "alpaca-en-demo / smollm2-135m (sft)": {"task": {"name": "sft"}, "model": {"name": "smollm2-135m"},
                                            "data": {"train": str(SHARED / "instruct" / "alpaca_en_demo.json")}},
}


def best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(min(times), 4)


def measure(name: str, settings: dict, repeats: int) -> dict:
    cfg = build_config({**settings, "data": {**settings["data"], "validation_size": 0, "test_size": 0}})
    task = new_task(cfg)
    rows = task.load(cfg)[0]["train"]
    tokenizer = load_tokenizer(resolve(cfg.model.name), cfg.model)
    with tempfile.TemporaryDirectory() as folder:
        def first_run():
            for path in Path(folder).glob("*.arrow"):
                path.unlink()
            return cached_encode(task, rows, tokenizer, cfg.data, Path(folder))

        encode_s = best_of(repeats, lambda: task.encode(rows, tokenizer, cfg.data))
        first_s = best_of(repeats, first_run)
        hit_s = best_of(repeats, lambda: cached_encode(task, rows, tokenizer, cfg.data, Path(folder)))
        features, hit, _ = cached_encode(task, rows, tokenizer, cfg.data, Path(folder))
        assert hit and features == task.encode(rows, tokenizer, cfg.data)
        size = sum(p.stat().st_size for p in Path(folder).glob("*.arrow"))
    return {"case": name, "rows": len(rows), "features": len(features),
            "tokens": sum(len(f["input_ids"]) for f in features), "file_mb": round(size / 1e6, 2),
            "key_s": best_of(repeats, lambda: cache_key(task, rows, tokenizer, cfg.data)),
            "encode_s": encode_s, "first_run_s": first_s, "hit_s": hit_s, "speedup": round(encode_s / hit_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    require(SHARED)
    results = [measure(name, settings, args.repeats) for name, settings in CASES.items()]
    report = {"command": f"benchmarks/token_cache.py --repeats {args.repeats}", "results": results}
    write_json(args.out / "token_cache.json", report)
    lines = ["| case | rows | features | cache file MB | encode s | first run s | hit s | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['rows']:,} | {r['features']:,} | {r['file_mb']} | {r['encode_s']} | "
              f"{r['first_run_s']} | {r['hit_s']} | {r['speedup']}x |" for r in results]
    write_text(args.out / "token_cache.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
