from pathlib import Path

import pandas as pd
import pytest

from lmtune.config import DataConfig
from lmtune.data import (
    check_labels_seen,
    check_required,
    clean_text,
    load_labelled,
    read_table,
    select_columns,
    split_labels,
)
from lmtune.errors import DataError


def table(tmp_path: Path, text: str, name: str = "d.csv", mapping: dict | None = None) -> pd.DataFrame:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    mapping = mapping or {"text": "review", "label": "stars"}
    return select_columns(read_table(path, expected=list(mapping.values())), mapping)


def test_clean_text_nfkc_whitespace_lowercase():
    df = pd.DataFrame({"text": ["  Ｈｅｌｌｏ，\u00a0World\t\n again ", None, "好吃！１２３"]}, dtype=object)
    out = clean_text(df, ["text"], lowercase=True)
    assert out["text"].tolist() == ["hello, world again", None, "好吃!123"]
    assert df.loc[0, "text"].startswith("  ")  # the input is left alone


def test_empty_text_names_row_and_user_column(tmp_path):
    df = clean_text(table(tmp_path, "review,stars\ngood,5\n  \t ,3\n"), ["text"])
    with pytest.raises(DataError, match=r"d\.csv, row 2, column 'review': empty text") as err:
        check_required(df, ["text", "label"])
    assert (err.value.row, err.value.column) == (2, "review")


def test_missing_label_names_row_and_user_column(tmp_path):
    df = table(tmp_path, "review,stars\ngood,5\nbad,\nok,\n")
    with pytest.raises(DataError, match=r"row 2, column 'stars': missing label.*2 rows"):
        check_required(df, ["text", "label"])


def test_missing_label_in_headerless_file_names_position(tmp_path):
    df = table(tmp_path, "good\t5\nbad\t\n", "d.tsv", {"text": 0, "label": 1})
    with pytest.raises(DataError, match=r"row 2, column 1: missing label"):
        check_required(df, ["text", "label"])


def test_unseen_label_names_row_column_and_known_labels(tmp_path):
    df = table(tmp_path, "review,stars\ngood,5\nmeh,4\n")
    with pytest.raises(DataError, match=r"row 2, column 'stars': label '4' never occurs.*known labels: 1, 5"):
        check_labels_seen({"1", "5"}, df)


def test_unseen_label_lists_are_truncated(tmp_path):
    df = table(tmp_path, "review,stars\ngood,new\n")
    with pytest.raises(DataError, match=r"\.\.\. \(50 in all\)"):
        check_labels_seen({str(i) for i in range(50)}, df)


def test_unseen_label_inside_multi_label_cell(tmp_path):
    df = split_labels(table(tmp_path, "review,stars\na,x|y\nb,y|z\n"), "|")
    with pytest.raises(DataError, match=r"row 2, column 'stars': label 'z'"):
        check_labels_seen({"x", "y"}, df)


def test_split_labels_sorts_strips_and_keeps_lists():
    df = pd.DataFrame({"label": ["b , a,", ["z", "y"], None]}, dtype=object)
    assert split_labels(df, ",")["label"].tolist() == [["a", "b"], ["z", "y"], None]


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


def test_load_labelled_checks_validation_labels(tmp_path):
    cfg = DataConfig(train=write(tmp_path, "train.csv", "text,label\n" + "a,x\nb,y\n" * 10),
                     validation=write(tmp_path, "dev.csv", "text,label\nc,x\nd,w\n"), test_size=0)
    with pytest.raises(DataError, match=r"dev\.csv, row 2, column 'label': label 'w'"):
        load_labelled(cfg, {"text": "text"}, "label", seed=0)


def test_load_labelled_reports_empty_text_with_user_column(tmp_path):
    cfg = DataConfig(train=write(tmp_path, "train.tsv", "s\tl\n" + "a\tx\n" * 5 + "\u3000\tx\n"))
    with pytest.raises(DataError, match=r"train\.tsv, row 6, column 's': empty text"):
        load_labelled(cfg, {"text": "s"}, "l", seed=0)


def test_load_labelled_end_to_end(tmp_path):
    rows = "".join(f"Text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    cfg = DataConfig(train=write(tmp_path, "train.csv", "text,label\n" + rows), lowercase=True,
                     validation_size=0.25, test_size=0.25)
    splits, report = load_labelled(cfg, {"text": "text", "text_pair": None}, "label", seed=1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "validation": 10, "test": 10}
    assert list(splits["train"].columns) == ["text", "label", "text_as_given"]
    assert splits["train"]["text"].iloc[0] == "text 0"
    assert splits["train"]["text_as_given"].iloc[0] == "Text 0"  # what predictions echo
    assert report["sources"]["test"] == f"split of {cfg.train}"
    assert report["rows"] == {"train": 20, "validation": 10, "test": 10}


def test_load_labelled_multi_label_and_sample(tmp_path):
    rows = "".join(f"t{i},{'a;b' if i % 2 else 'b'}\n" for i in range(30))
    cfg = DataConfig(train=write(tmp_path, "train.csv", "text,tags\n" + rows), label_separator=";",
                     max_train_rows=20, validation_size=0.2, test_size=0)
    splits, _ = load_labelled(cfg, {"text": "text"}, "tags", seed=3)
    assert set(splits) == {"train", "validation"}
    assert len(splits["train"]) + len(splits["validation"]) == 20
    assert {tuple(v) for v in splits["train"]["label"]} == {("a", "b"), ("b",)}


def test_load_labelled_without_training_data():
    with pytest.raises(DataError, match="no training data given"):
        load_labelled(DataConfig(), {"text": "text"}, "label", seed=0)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("seed", range(6))
def test_carved_splits_only_hold_labels_seen_in_train(tmp_path, seed):
    rows = "".join(f"t{i},a\n" for i in range(30)) + "rare,b\nrarer,c\n"
    cfg = DataConfig(train=write(tmp_path, "train.csv", "text,label\n" + rows))
    splits, _ = load_labelled(cfg, {"text": "text"}, "label", seed=seed)
    assert set(splits["train"]["label"]) == {"a", "b", "c"}
    assert sum(len(part) for part in splits.values()) == 32
