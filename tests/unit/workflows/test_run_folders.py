"""Each run gets a folder of its own, inside output_dir."""

from __future__ import annotations

import threading

from conftest import lmtune, squash

from lmtune.config import build_config
from lmtune.runs import free_run_dir


def test_runs_started_at_the_same_moment_never_share_a_folder(tmp_path):
    cfg, start, names = build_config({"name": "same", "output_dir": str(tmp_path)}), threading.Barrier(8), []

    def claim() -> None:
        start.wait()
        names.append(free_run_dir(cfg).name)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(names) == sorted(["same", *(f"same-{i}" for i in range(2, 9))])
    assert all((tmp_path / name).is_dir() for name in names)


def test_a_run_name_that_leaves_output_dir_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("../../escaped", "a/b", ".."):
        code, out, err = lmtune(monkeypatch, capsys, "train", "--name", name, "--output-dir", "runs/inner")
        assert code == 2, out + err
        assert squash("must be one folder name") in squash(err)
        assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_run_that_fails_before_writing_leaves_no_empty_folder(tmp_path, monkeypatch, capsys):
    code, _, err = lmtune(monkeypatch, capsys, "train", "--data", str(tmp_path / "missing.csv"), "--output-dir",
                          str(tmp_path / "runs"))
    assert code == 2, err
    assert not (tmp_path / "runs").exists()
