"""Text and label columns found in files whose config does not name them, and label columns that are not classes."""

from __future__ import annotations

import json

import pytest
from conftest import lmtune

from lmtune.config import DataConfig
from lmtune.data import load_labelled
from lmtune.errors import DataError

POSITIVE = ["great food, fast delivery", "loved it, will order again", "tasty and warm", "friendly driver"]
NEGATIVE = ["cold and late", "never again, awful", "the soup was spilled", "rude on the phone"]
ROWS = [(t, "1") for t in POSITIVE * 3] + [(t, "0") for t in NEGATIVE * 3]


def csv_file(tmp_path, header: str | None, rows=ROWS, name="d.csv"):
    lines = ([header] if header else []) + [f'"{t}",{y}' for t, y in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def load(path, categorical=True, **data):
    return load_labelled(DataConfig(train=path, **data), {"text": DataConfig(**data).text_column, "text_pair": None},
                         DataConfig(**data).label_column, seed=0, categorical=categorical)


def test_common_names_are_found_and_said(tmp_path, capsys):
    splits, report = load(csv_file(tmp_path, "review,sentiment"))
    assert report["columns"] == {"text_column": "review", "label_column": "sentiment"}
    assert set(splits["train"]["label"]) == {"0", "1"}
    assert capsys.readouterr().out.strip() == ("columns: text='review', label='sentiment' (found by name; set "
                                               "--text-column/--label-column to change)")


def test_sst2_tsv_and_chinese_jsonl(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in ROWS), encoding="utf-8")
    assert load(str(tsv))[1]["columns"] == {"text_column": "sentence"}
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "评论": t, "rating": y}, ensure_ascii=False) + "\n"
                             for i, (t, y) in enumerate(ROWS)), encoding="utf-8")
    assert load(str(jsonl))[1]["columns"] == {"text_column": "评论", "label_column": "rating"}


def test_by_content_and_headerless(tmp_path, capsys):
    found = load(csv_file(tmp_path, "words,polarity"))[1]["columns"]
    assert found == {"text_column": "words", "label_column": "polarity"}
    assert "text as the longest text, label as the one column of few distinct values" in capsys.readouterr().out
    splits, report = load(csv_file(tmp_path, None, name="headerless.csv"))
    assert report["columns"] == {"text_column": 0, "label_column": 1}
    assert len(splits["train"]) + len(splits["validation"]) + len(splits["test"]) == len(ROWS)  # no row lost


def test_ambiguity_lists_the_candidates(tmp_path):
    rows = [(f'{t}","{t} again', y) for t, y in ROWS]
    with pytest.raises(DataError, match=r"which column holds the text: 'review', 'comment'.*--text-column"):
        load(csv_file(tmp_path, "review,comment,label", rows))


def test_explicit_text_column_names_the_missing_label(tmp_path):
    path = csv_file(tmp_path, "review,sentiment")
    assert load(path, text_column="review")[1]["columns"] == {"label_column": "sentiment"}
    with pytest.raises(DataError, match=r"column 'label' not found; available columns: 'review', 'sentiment'"):
        load(path, text_column="review", label_column="label")


def test_regression_finds_the_numeric_column(tmp_path):
    rows = [(t, f"{i * 0.37:.2f}") for i, (t, _) in enumerate(ROWS)]
    assert load(csv_file(tmp_path, "id,content,stars", [(f'{t}",{i}', y) for i, (t, y) in enumerate(rows)]
                         ), categorical=False)[1]["columns"] == {"text_column": "content", "label_column": "stars"}


def test_continuous_labels_ask_for_regression(tmp_path):
    rows = [(f"text {i}", f"{i * 0.137:.3f}") for i in range(60)]
    with pytest.raises(DataError, match=r"60 different numbers.*--task regression"):
        load(csv_file(tmp_path, "text,label", rows))


def test_id_like_and_single_class_labels(tmp_path):
    with pytest.raises(DataError, match=r"looks like an ID"):
        load(csv_file(tmp_path, "text,label", [(f"text {i}", f"user{i}") for i in range(40)]))
    with pytest.raises(DataError, match=r"every row has the label 'yes'.*at least two classes"):
        load(csv_file(tmp_path, "text,label", [(f"text {i}", "yes") for i in range(10)]))


def test_whole_float_labels_are_integers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": float(y)}) + "\n" for t, y in ROWS))
    splits, _ = load(str(path))
    assert set(splits["train"]["label"]) == {"0", "1"}


@pytest.fixture(scope="module")
def review_run(tiny_bert, tmp_path_factory):
    """A tiny run trained on `review,sentiment` with no column flags."""
    from lmtune.api import train

    folder = tmp_path_factory.mktemp("review-run")
    path = csv_file(folder, "review,sentiment")
    return train({"name": "r", "output_dir": str(folder / "runs"), "model": {"name": tiny_bert},
                  "data": {"train": path, "max_length": 32},
                  "train": {"max_steps": 1, "batch_size": 8, "seed": 1}, "task": {"baselines": False}}).path


def test_found_columns_are_saved_and_predict_uses_them(review_run, tmp_path, monkeypatch, capsys):
    from lmtune.config import load_config

    data = load_config(review_run / "config.yaml").data
    assert (data.text_column, data.label_column) == ("review", "sentiment")
    inputs = tmp_path / "new.csv"
    inputs.write_text("id,review\n1,great food\n2,cold and late\n", encoding="utf-8")
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(review_run), "-i", str(inputs))
    assert code == 0, err
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["great food", "cold and late"]
    other = tmp_path / "other.csv"
    other.write_text("id,comment\n1,great food\n", encoding="utf-8")
    code, out, err = lmtune(monkeypatch, capsys, "predict", str(review_run), "-i", str(other))
    assert code == 2 and "Traceback" not in err
    assert "other.csv: no column 'review'" in err and "'id', 'comment'" in err
