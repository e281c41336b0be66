"""A stopped run resumes to exactly the run that was never stopped, and resuming never runs code from the run
folder."""

from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path

import pytest
from safetensors.torch import load_file

from lmtune.api import train
from lmtune.errors import ConfigError, Interrupted
from lmtune.io import read_jsonl
from lmtune.training import checkpoint, loop

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS = 24  # 16 steps an epoch: a stop at step 16 is also an epoch's end


def config(tiny_bert: str, folder: Path, name: str) -> dict:
    rows = [f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(80)]
    (folder / "train.csv").write_text("text,label\n" + "".join(rows[:64]))
    (folder / "dev.csv").write_text("text,label\n" + "".join(rows[64:]))
    return {"name": name, "output_dir": str(folder / "runs"), "model": {"name": tiny_bert},
            "data": {"train": str(folder / "train.csv"), "validation": str(folder / "dev.csv"), "test_size": 0},
            "train": {"max_steps": STEPS, "batch_size": 4, "save_every": 2, "log_every": 1, "precision": "fp32",
                      "seed": 3}}


def stop_at(monkeypatch, step: int) -> None:
    """Ctrl-C right after the checkpoint of `step` is written."""
    save, fired = checkpoint.save, []

    def save_then_stop(accelerator, root, state, *args):
        path = save(accelerator, root, state, *args)
        if state["step"] == step and not fired:
            fired.append(step)
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(checkpoint, "save", save_then_stop)


@pytest.mark.parametrize("step", [6, 16])
def test_a_stopped_and_resumed_run_ends_bitwise_equal_to_an_unstopped_one(tiny_bert, tmp_path, monkeypatch, step):
    whole = train(config(tiny_bert, tmp_path, "whole"))
    with monkeypatch.context() as patch:
        stop_at(patch, step)
        with pytest.raises(Interrupted):
            train(config(tiny_bert, tmp_path, "stopped"))
    resumed = train({"name": "stopped", "output_dir": str(tmp_path / "runs")}, resume=True)

    weights = [load_file(str(run.path / "model" / "model.safetensors")) for run in (whole, resumed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])
    assert resumed.metrics["validation"] == whole.metrics["validation"]
    logs = [read_jsonl(run.path / "train_log.jsonl") for run in (whole, resumed)]
    losses = [[(r["step"], r["loss"]) for r in log if "loss" in r] for log in logs]
    assert losses[1] == losses[0]  # each step once, with the same loss
    assert [r["step"] for r in logs[1] if "eval" in r] == [r["step"] for r in logs[0] if "eval" in r]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_in_the_middle_of_a_step_stops_after_it_and_resumes_exactly(tiny_bert, tmp_path, monkeypatch,
                                                                             signum):
    """`kill` or Ctrl-C arrive anywhere, here between a step's backward pass and its optimizer update (step 7, with
    checkpoints every 2 steps): the run finishes that step, saves it, and the resumed run is the unstopped one."""
    whole = train(config(tiny_bert, tmp_path, "whole"))
    clip, calls = loop.clip_gradients, []

    def clip_then_signal(*args):
        calls.append(1)
        if len(calls) == 7:
            os.kill(os.getpid(), signum)
        return clip(*args)

    with monkeypatch.context() as patch:
        patch.setattr(loop, "clip_gradients", clip_then_signal)
        with pytest.raises(Interrupted, match="after step 7"):
            train(config(tiny_bert, tmp_path, "stopped"))
    resumed = train({"name": "stopped", "output_dir": str(tmp_path / "runs")}, resume=True)
    weights = [load_file(str(run.path / "model" / "model.safetensors")) for run in (whole, resumed)]
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])
    assert resumed.metrics["validation"] == whole.metrics["validation"]


class Planted:
    """Pickled, it runs code when loaded: what an attacker leaves in a run folder someone resumes."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_resume_never_unpickles_what_lies_in_the_run_folder(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, "shared")
    cfg["train"] |= {"max_steps": 4, "keep_final_checkpoint": True}
    run = train(cfg)
    last = checkpoint.all_checkpoints(run.path / "checkpoints")[-1]
    marker = tmp_path / "ran"
    # Where accelerate's save_state puts the scheduler, the RNG states and the optimizer.
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "pytorch_model.bin"):
        (last / name).write_bytes(pickle.dumps(Planted(marker)))
    resumed = train({"name": "shared", "output_dir": str(tmp_path / "runs"), "train": {"max_steps": 6}}, resume=True)
    assert resumed.metrics["train"]["steps"] == 6
    assert not marker.exists()


def test_a_checkpoint_in_the_old_pickle_format_is_refused_not_loaded(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, "old")
    cfg["train"] |= {"max_steps": 2, "keep_final_checkpoint": True}
    run = train(cfg)
    last = checkpoint.all_checkpoints(run.path / "checkpoints")[-1]
    (last / checkpoint.WEIGHTS).unlink()
    with pytest.raises(ConfigError, match="pickle format"):
        train({"name": "old", "output_dir": str(tmp_path / "runs"), "train": {"max_steps": 4}}, resume=True)
    assert json.loads((last / checkpoint.STATE).read_text())["step"] == 2
