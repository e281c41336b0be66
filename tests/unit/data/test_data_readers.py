import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

from lmtune.data import read_splits, read_table, select_columns
from lmtune.errors import DataError

AGNEWS = Path(__file__).resolve().parents[4] / "shared" / "data" / "agnews" / "train.tsv"  # beside the repo


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_header_detected_from_expected_names(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nhello,01\n,1\n")
    df = read_table(path, expected=["text", "label"])
    assert list(df.columns) == ["text", "label"]
    assert list(df.index) == [1, 2]
    assert df.loc[1, "label"] == "01"  # no type guessing
    assert df.loc[2, "text"] is None
    assert df.attrs["file"] == str(path)


def test_header_absent_when_expected_names_not_in_first_row(tmp_path):
    path = write(tmp_path, "d.csv", "hello,pos\nbye,neg\n")
    df = read_table(path, expected=["text", "label"])
    assert list(df.columns) == [0, 1]
    assert len(df) == 2


def test_headerless_tsv_with_positions(tmp_path):
    path = write(tmp_path, "d.tsv", "good film\tpos\nbad film\tneg\n")
    df = select_columns(read_table(path, expected=[0, 1]), {"text": 0, "text_pair": None, "label": 1})
    assert list(df.columns) == ["text", "label"]
    assert df.loc[2].tolist() == ["bad film", "neg"]
    assert df.attrs["columns"] == {"text": 0, "label": 1}


def test_explicit_header_with_positions(tmp_path):
    path = write(tmp_path, "d.csv", "sentence,label\nhi,1\n")
    df = select_columns(read_table(path, header=True, expected=[0, 1]), {"text": 0, "label": 1})
    assert df.loc[1].tolist() == ["hi", "1"]


def test_tsv_keeps_bare_quotes(tmp_path):
    path = write(tmp_path, "d.tsv", 'sentence\tlabel\nthe " best\t1\n"quoted" start\t0\n')
    df = read_table(path, expected=["sentence"])
    assert df["sentence"].tolist() == ['the " best', '"quoted" start']


def test_csv_quoting_and_bom(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"a, b",x\n', encoding="utf-8-sig")
    df = read_table(path, expected=["text"])
    assert df.loc[1, "text"] == "a, b"


@pytest.mark.parametrize(("name", "text"), [
    ("bad.csv", "text,label\na,1\nb,2,extra\n"),
    ("bad.tsv", "text\tlabel\na\t1\nb\n"),
])
def test_malformed_row_names_row(tmp_path, name, text):
    with pytest.raises(DataError, match=r"row 2: malformed row: \d fields where the header has 2") as err:
        read_table(write(tmp_path, name, text), expected=["text"])
    assert err.value.row == 2


def test_allow_extra_fields_keeps_first_fields(tmp_path):
    path = write(tmp_path, "d.tsv", "a\tb\t1\na\tb\t2\tx\ty\n")
    df = read_table(path, expected=[0, 2], allow_extra_fields=True)
    assert df.shape == (2, 3)
    assert df.loc[2, 2] == "2"
    with pytest.raises(DataError, match="row 2"):
        read_table(path, expected=[0, 2])


def test_jsonl_malformed_line_names_record(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a"}\n\n{"text": "b"}\n{"text": \n')
    with pytest.raises(DataError, match=r"row 3: line 4 is not valid JSON"):
        read_table(path)


def test_jsonl_non_object_record(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a"}\n["b"]\n')
    with pytest.raises(DataError, match="row 2: expected a JSON object"):
        read_table(path)


def test_jsonl_round_trip_skips_blank_lines(tmp_path):
    path = write(tmp_path, "d.ndjson", '{"text": "a", "label": ["x", "y"]}\n\n{"text": "b"}\n')
    df = read_table(path)
    assert list(df.index) == [1, 2]
    assert df.loc[1, "label"] == ["x", "y"]
    assert df.loc[2, "label"] is None


@pytest.mark.parametrize("wrap", [False, True])
def test_json_list_or_wrapped_list(tmp_path, wrap):
    records = [{"text": "a", "label": 1}, {"text": "b", "label": 0}]
    path = write(tmp_path, "d.json", json.dumps({"data": records} if wrap else records))
    df = read_table(path)
    assert df.to_dict("records") == records
    assert list(df.index) == [1, 2]


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", None], "tags": [["x"], []]}).to_parquet(path)
    df = read_table(path)
    assert df["text"].tolist() == ["a", None]
    assert df.loc[1, "tags"] == ["x"]
    assert list(df.index) == [1, 2]


def test_datasets_folder_round_trip(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, 0]}, features=features)
    ds.save_to_disk(str(tmp_path / "single"))
    df = read_table(tmp_path / "single")
    assert df["label"].tolist() == ["pos", "neg"]  # class names, not ids
    datasets.DatasetDict({"train": ds, "dev": ds}).save_to_disk(str(tmp_path / "dict"))
    splits = read_splits(tmp_path / "dict")
    assert set(splits) == {"train", "dev"}
    assert list(splits["dev"].index) == [1, 2]
    with pytest.raises(DataError, match="read_splits"):
        read_table(tmp_path / "dict")


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unknown file type '.xlsx'.*csv"):
        read_table(write(tmp_path, "d.xlsx", "x"))


def test_missing_column_lists_available(tmp_path):
    df = read_table(write(tmp_path, "d.csv", "review,label\nhi,1\n"), header=True)
    with pytest.raises(DataError, match=r"column 'text'.*available columns: 'review', 'label'") as err:
        select_columns(df, {"text": "text", "label": "label"})
    assert err.value.column == "text"
    assert "d.csv" in str(err.value)


def test_missing_column_in_headerless_file_suggests_positions(tmp_path):
    df = read_table(write(tmp_path, "d.tsv", "hi\t1\n"), expected=["text", "label"])
    with pytest.raises(DataError, match=r"column 'text'.*no header: name columns by position 0\.\.1"):
        select_columns(df, {"text": "text"})


@pytest.mark.skipif(not AGNEWS.exists(), reason="../shared/data/agnews is not present")
def test_agnews_headerless_by_position():
    df = read_table(AGNEWS, expected=[0, 1])
    # The manifest says 10,000 rows; the file holds 10,001 data lines, all with two fields.
    assert len(df) == 10_001
    assert set(df[1]) == {"World", "Sports", "Business", "Sci/Tech"}
