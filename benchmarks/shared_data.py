"""Where the benchmarks find ../shared/data (read in place, never copied into the repo), and how they stop
without it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmtune.data.splits import stratified_sample

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SST2 = SHARED / "sst2"
AGNEWS = SHARED / "agnews" / "train.tsv"
ALPACA = SHARED / "instruct" / "alpaca_en_demo.json"
ALPACA_ZH = SHARED / "instruct" / "alpaca_zh_demo.json"
WAIMAI = SHARED / "waimai10k" / "train.csv"


def require(path: Path) -> None:
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks read their data from ../shared/data (see its MANIFEST.md)")


def sst2(split: str) -> pd.DataFrame:
    """SST-2's train or dev file as text,label rows (its sentences hold quotes: read verbatim)."""
    require(SST2)
    return pd.read_csv(SST2 / f"{split}.tsv", sep="\t", quoting=3).rename(columns={"sentence": "text"})


def labelled_and_unlabelled(labelled: int, unlabelled: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """A stratified sample of SST-2 training rows, and the sentences of other training rows (labels dropped)."""
    rows = sst2("train")
    kept = stratified_sample(rows, "label", labelled, seed)
    rest = rows.drop(kept.index).sample(n=unlabelled, random_state=seed)
    return kept, [t.replace("\n", " ") for t in rest["text"]]
