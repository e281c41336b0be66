"""train.release_memory hands freed memory back after every optimiser step, and only when on."""

from __future__ import annotations

import sys

import pytest

from lmtune.api import train
from lmtune.training import loop
from lmtune.training.memory import releaser


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_the_releaser_runs_here():
    release = releaser()
    assert release is not None
    release()


@pytest.mark.parametrize("on", [True, False])
def test_fit_releases_after_each_step_when_asked(tiny_bert, tmp_path, monkeypatch, on):
    calls = []
    monkeypatch.setattr(loop, "releaser", lambda: lambda: calls.append(1))
    rows = "".join(f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    (tmp_path / "d.csv").write_text("text,label\n" + rows)
    train({"name": "r", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
           "data": {"train": str(tmp_path / "d.csv")}, "task": {"baselines": False},
           "train": {"max_steps": 5, "batch_size": 8, "release_memory": on}})
    assert len(calls) == (5 if on else 0)
