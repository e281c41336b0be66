"""Where the benchmarks find ../shared/data (read in place, never copied into the repo), and how they stop
without it."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SST2 = SHARED / "sst2"
AGNEWS = SHARED / "agnews" / "train.tsv"
ALPACA = SHARED / "instruct" / "alpaca_en_demo.json"
ALPACA_ZH = SHARED / "instruct" / "alpaca_zh_demo.json"
WAIMAI = SHARED / "waimai10k" / "train.csv"


def require(path: Path) -> None:
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks read their data from ../shared/data (see its MANIFEST.md)")
