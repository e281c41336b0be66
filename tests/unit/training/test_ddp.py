"""`lmtune train` under torchrun: 2 CPU processes (gloo) match single-process training within tolerance."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lmtune.api import train

TORCHRUN = Path(sys.executable).parent / "torchrun"
LMTUNE = Path(sys.executable).parent / "lmtune"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (TORCHRUN.exists() and LMTUNE.exists()), reason="torchrun / lmtune scripts not installed")
def test_two_process_ddp_matches_single_process(tiny_bert, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"the film {'good' if i % 2 else 'bad'} {i},{i % 2}\n" for i in range(64)))
    common = ["--model", tiny_bert, "--data", str(data), "--epochs", "1", "--output-dir", str(tmp_path / "runs"),
              "--set", "train.threads=1", "--set", "task.baselines=false", "--set", "train.precision=fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # 2 processes x 4 rows per step = the single run's 8 rows per step.
    proc = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                           str(free_port()), str(LMTUNE), "train", *common, "--name", "ddp", "--batch-size", "4"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "runs" / "ddp" / "metrics.json").read_text())
    single = train({"name": "single", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                    "data": {"train": str(data)}, "task": {"baselines": False},
                    "train": {"epochs": 1, "batch_size": 8, "threads": 1, "precision": "fp32"}}).metrics
    assert ddp["train"]["steps"] == single["train"]["steps"]  # an epoch is the same number of global steps
    assert ddp["validation"]["n"] == single["validation"]["n"]  # every process evaluated the whole split
    assert ddp["validation"]["log_loss"] == pytest.approx(single["validation"]["log_loss"], abs=0.05)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp", "single"]  # one run folder, not two
    assert (tmp_path / "runs" / "ddp" / "model" / "model.safetensors").is_file()
