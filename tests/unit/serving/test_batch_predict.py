"""`lmtune predict` on files: chunked streaming keeps input order, resumes a cut-off job, clear errors."""

from __future__ import annotations

import json

import pytest

from lmtune.api import Predictor
from lmtune.errors import DataError, UserError
from lmtune.serving.batch_predict import predict_file

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = [f"{'good ' * (i % 5 + 1)}film number {i}" for i in range(25)]  # varied lengths: sorting matters


@pytest.fixture
def inputs(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TEXTS)))
    return path


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_chunks_keep_input_order_and_match_one_pass(tiny_run, inputs, tmp_path):
    out = tmp_path / "out.jsonl"
    assert predict_file(tiny_run, str(inputs), out, chunk_rows=7, batch_size=4) == 25
    got = read(out)
    assert [r["row"] for r in got] == list(range(1, 26))
    assert [r["text"] for r in got] == TEXTS
    whole = Predictor(tiny_run).predict(TEXTS, batch_size=64)
    for streamed, one_pass in zip(got, whole, strict=True):
        assert streamed["label"] == one_pass["label"]
        assert streamed["probabilities"]["good"] == pytest.approx(one_pass["probabilities"]["good"], abs=0.02)


def test_resume_continues_after_the_last_complete_line(tiny_run, inputs, tmp_path):
    full = tmp_path / "full.jsonl"
    predict_file(tiny_run, str(inputs), full, chunk_rows=10)
    lines = full.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:11]) + lines[11][:15])  # a kill in the middle of row 12
    assert predict_file(tiny_run, str(inputs), cut, chunk_rows=10, resume=True) == 25
    resumed = read(cut)
    assert [r["row"] for r in resumed] == list(range(1, 26))
    assert [r["label"] for r in resumed] == [r["label"] for r in read(full)]


def test_csv_output_has_one_header_across_chunks(tiny_run, inputs, tmp_path):
    out = tmp_path / "out.csv"
    predict_file(tiny_run, str(inputs), out, chunk_rows=6)
    rows = out.read_text().splitlines()
    assert len(rows) == 26 and rows[0].startswith("row,") and sum(r.startswith("row,") for r in rows) == 1


def test_stdin_lines_and_clear_errors(tiny_run, tmp_path, capsys):
    assert predict_file(tiny_run, None, None, lines=["good film\n", "\n", "bad film\n"]) == 2
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["good film", "bad film"]
    with pytest.raises(UserError, match="--resume needs a .jsonl"):
        predict_file(tiny_run, None, tmp_path / "x.csv", lines=["a"], resume=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,fine\n2,too,many\n")
    with pytest.raises(DataError, match=r"bad\.csv, row 2"):
        predict_file(tiny_run, str(bad), tmp_path / "o.jsonl")


def test_a_killed_job_keeps_its_rows_for_resume_and_the_old_output_until_it_finishes(tiny_run, inputs, tmp_path,
                                                                                      monkeypatch):
    out = tmp_path / "out.jsonl"
    out.write_text("an older job's output\n")
    real, calls = Predictor.predict, []

    def killed_on_the_second_chunk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", killed_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict_file(tiny_run, str(inputs), out, chunk_rows=10)
    assert out.read_text() == "an older job's output\n"
    monkeypatch.setattr(Predictor, "predict", real)
    assert predict_file(tiny_run, str(inputs), out, chunk_rows=10, resume=True) == 25
    assert [r["row"] for r in read(out)] == list(range(1, 26))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
