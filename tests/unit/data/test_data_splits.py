import json

import pandas as pd
import pytest

from lmtune.data import quality_report, stratified_sample, stratified_split
from lmtune.errors import DataError


def frame(labels: list) -> pd.DataFrame:
    df = pd.DataFrame({"text": [f"t{i}" for i in range(len(labels))], "label": labels},
                      index=pd.RangeIndex(1, len(labels) + 1), dtype=object)
    df.attrs["file"] = "train.csv"
    return df


def shares(df: pd.DataFrame) -> dict:
    return df["label"].value_counts(normalize=True).round(2).to_dict()


def test_stratified_split_keeps_proportions_and_row_numbers():
    df = frame(["a"] * 80 + ["b"] * 20)
    splits = stratified_split(df, "label", 0.1, 0.2, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 70, "validation": 10, "test": 20}
    for part in splits.values():
        assert shares(part) == {"a": 0.8, "b": 0.2}
        assert part["text"].tolist() == [f"t{i - 1}" for i in part.index]  # index = original row number
    assert sorted(i for part in splits.values() for i in part.index) == list(range(1, 101))
    assert splits["test"].attrs["file"] == "train.csv"


def test_stratified_split_is_seed_deterministic():
    df = frame(["a", "b", "c"] * 30)
    first, again = stratified_split(df, "label", 0.2, 0.1, 7), stratified_split(df, "label", 0.2, 0.1, 7)
    other = stratified_split(df, "label", 0.2, 0.1, 8)
    assert all(first[k].index.equals(again[k].index) for k in first)
    assert not first["test"].index.equals(other["test"].index)


def test_zero_sizes_omit_splits():
    df = frame(["a", "b"] * 10)
    assert set(stratified_split(df, "label", 0.2, 0, 0)) == {"train", "validation"}
    assert set(stratified_split(df, "label", 0, 0.2, 0)) == {"train", "test"}


def test_rare_class_falls_back_to_random_split():
    df = frame(["a"] * 30 + ["b"])
    with pytest.warns(UserWarning, match="splitting at random"):
        splits = stratified_split(df, "label", 0.1, 0.1, 0)
    assert sum(len(p) for p in splits.values()) == 31


def test_multi_label_stratifies_on_first_label():
    df = frame([["a", "x"]] * 40 + [["b"]] * 40)
    splits = stratified_split(df, "label", 0.25, 0, 0)
    assert splits["validation"]["label"].map(lambda v: v[0]).value_counts().to_dict() == {"a": 10, "b": 10}


def test_too_few_rows_to_split():
    with pytest.raises(DataError, match="train.csv: only 2 rows"):
        stratified_split(frame(["a", "b"]), "label", 0.4, 0.4, 0)


def test_stratified_sample_proportions_and_determinism():
    df = frame(["a"] * 90 + ["b"] * 10)
    sample = stratified_sample(df, "label", 20, seed=3)
    assert len(sample) == 20
    assert shares(sample) == {"a": 0.9, "b": 0.1}
    assert sample.index.equals(stratified_sample(df, "label", 20, seed=3).index)
    assert sample.index.is_monotonic_increasing
    assert stratified_sample(df, "label", 500, seed=3) is df


def test_quality_report_counts_duplicates_conflicts_and_leakage():
    train = pd.DataFrame({"text": ["a", "a", "b", "b", "c"], "pair": ["1", "1", "1", "1", "1"],
                          "label": ["x", "x", "x", "y", ["p", "q"]]}, dtype=object)
    validation = pd.DataFrame({"text": ["a", "d", "d"], "pair": ["1", "1", "2"], "label": ["y", "x", "x"]},
                              dtype=object)
    test = pd.DataFrame({"text": ["a", "c"], "pair": ["2", "1"], "label": ["x", "x"]}, dtype=object)
    report = quality_report({"train": train, "validation": validation, "test": test}, ["text", "pair"])
    assert report == {"rows": {"train": 5, "validation": 3, "test": 2},
                      "duplicates": {"train": 1, "validation": 0, "test": 0},
                      "label_conflicts": 1, "leakage": {"validation": 1, "test": 1}}
    json.dumps(report)
