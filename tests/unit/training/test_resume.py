"""A run killed with SIGKILL mid-training continues from its last checkpoint with `lmtune train --resume`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import lmtune, squash

LMTUNE = Path(sys.executable).parent / "lmtune"
MAX_STEPS = 40


# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine they lose a lot.
pytestmark = pytest.mark.usefixtures("one_thread")


def env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}


def write_data(path: Path) -> None:
    rows = [f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}" for i in range(60)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def steps(path: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(path) if "loss" in r]


def start_and_wait_for_checkpoint(args: list[str], run_dir: Path, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until the caller stops it
    # A shell that runs pytest in the background leaves SIGINT ignored, and children inherit that; a user's
    # terminal does not, so give the child the default Ctrl-C behaviour back.
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent, env=env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    try:
        while not list((run_dir / "checkpoints").glob("step-*")):
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint appeared within 600 s"
            time.sleep(0.02)
    except BaseException:
        proc.kill()
        proc.wait(timeout=60)
        raise
    return proc


def train_args(tiny_bert: str, data: Path, out: Path, name: str, max_steps: int) -> list[str]:
    return [str(LMTUNE), "train", "--model", tiny_bert, "--data", str(data), "--output-dir", str(out),
            "--name", name, "--max-steps", str(max_steps), "--batch-size", "4",
            "--set", "train.save_every=2", "--set", "train.log_every=1", "--set", "train.threads=1"]


needs_script = pytest.mark.skipif(not LMTUNE.exists(), reason="the lmtune console script is not installed")


@needs_script
def test_sigkill_then_resume_finishes(tiny_bert, tmp_path, monkeypatch, capsys):
    data = tmp_path / "d.csv"
    write_data(data)
    out = tmp_path / "runs"
    run_dir = out / "killed"
    proc = start_and_wait_for_checkpoint(train_args(tiny_bert, data, out, "killed", MAX_STEPS), run_dir,
                                         tmp_path / "first.log")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists(), "the run finished before it could be killed"
    assert not (run_dir / "model").exists()

    checkpoints = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("step-*"))
    resumed_from = checkpoints[-1]
    assert 2 <= resumed_from < MAX_STEPS
    assert resumed_from % 2 == 0
    logged_before = len(steps(run_dir / "train_log.jsonl"))
    saved_config = (run_dir / "config.yaml").read_text()

    # only the run's name and folder: everything else comes from the run's saved config.yaml. Resumed in this
    # process through the console script's entry point (saves a second interpreter start-up).
    code, out_text, err_text = lmtune(monkeypatch, capsys, "train", "--resume", "--name", "killed", "--output-dir",
                                      str(out))
    output = out_text + err_text
    assert code == 0, output[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["killed"]  # same folder, no killed-2
    assert (run_dir / "config.yaml").read_text() == saved_config

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train"]["steps"] == MAX_STEPS
    assert metrics["model"] == tiny_bert
    assert (run_dir / "model" / "model.safetensors").is_file()

    # Continues from the checkpoint, no restart from step 1, and the steps logged after the checkpoint but before
    # the kill are cut from the log and done again: every step is logged once.
    assert steps(run_dir / "train_log.jsonl") == list(range(1, MAX_STEPS + 1))
    assert logged_before >= resumed_from


def test_resume_of_a_missing_run_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out_text, err_text = lmtune(monkeypatch, capsys, "train", "--resume", "--name", "ghost", "--output-dir",
                                      str(tmp_path / "runs"))
    output = out_text + err_text
    assert code == 2
    assert squash("nothing to resume") in squash(output)
    assert squash(str(tmp_path / "runs" / "ghost")) in squash(output)
    assert "Traceback" not in output
    assert not (tmp_path / "runs").exists()


def test_resume_without_a_checkpoint_is_an_error_free_restart_in_place(tiny_bert, tmp_path):
    """A run killed before its first checkpoint has only config.yaml: resuming trains it from the start,
    in the same folder, with the saved settings."""
    from lmtune.api import train

    data = tmp_path / "d.csv"
    write_data(data)
    first = train({"name": "r", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                   "data": {"train": str(data)}, "train": {"max_steps": 2, "batch_size": 8, "log_every": 1}})
    again = train({"name": "r", "output_dir": str(tmp_path / "runs"), "train": {"max_steps": 3}}, resume=True)
    assert again.path == first.path
    assert again.config.model.name == tiny_bert  # from the saved config, not the default model
    assert again.config.train.batch_size == 8
    assert again.config.train.max_steps == 3  # given explicitly, so it wins over the saved value
    assert again.metrics["train"]["steps"] == 3


@needs_script
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_says_how_to_resume(tiny_bert, tmp_path, sig):
    data = tmp_path / "d.csv"
    write_data(data)
    run_dir = tmp_path / "runs" / "stopped"
    proc = start_and_wait_for_checkpoint(train_args(tiny_bert, data, tmp_path / "runs", "stopped", 100_000),
                                         run_dir, tmp_path / "run.log")
    os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:  # never leave a 100,000-step run behind a failed test
            proc.kill()
            proc.wait(timeout=60)
    assert code == 130
    output = (tmp_path / "run.log").read_text()
    assert "--resume" in output and "Traceback" not in output
    state = json.loads(sorted((run_dir / "checkpoints").glob("step-*"))[-1].joinpath("trainer_state.json").read_text())
    logged = steps(run_dir / "train_log.jsonl")
    assert state["step"] == logged[-1]  # the checkpoint holds the very last step, not an older one
