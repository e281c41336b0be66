"""A run killed (SIGTERM) and resumed at several steps ends with the uninterrupted run's weights, bit for bit.

    .venv/bin/python benchmarks/kill_resume.py [--rows 2000] [--kills 5] [--out benchmarks/results]

Trains minilm on SST-2 rows in fp32 twice: once straight through, once killed at `--kills` steps spread over the
run and resumed with `lmtune train --resume` after each kill. Writes kill_resume.json with the steps and the sha256
of both runs' model/model.safetensors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared_data import SST2

LMTUNE = str(Path(sys.executable).parent / "lmtune")


def command(out: Path, name: str, rows: int) -> list[str]:
    return [LMTUNE, "train", "--data", str(SST2 / "train.tsv"), "--validation", str(SST2 / "dev.tsv"),
            "--text-column", "sentence", "--label-column", "label", "--output-dir", str(out), "--name", name,
            "--epochs", "1", "--set", f"data.max_train_rows={rows}", "--set", "data.test_size=0",
            "--set", "train.precision=fp32", "--set", "train.log_every=1", "--set", "task.baselines=false"]


def last_step(run: Path) -> int:
    log = run / "train_log.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return max((json.loads(line)["step"] for line in lines if line.strip()), default=0)


def killed_at(cmd: list[str], run: Path, step: int) -> int:
    """Start `cmd`, send SIGTERM once the log reaches `step`; the step the run's checkpoint holds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and last_step(run) < step:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    return last_step(run)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        subprocess.run(command(out, "straight", args.rows), check=True, stdout=subprocess.DEVNULL)
        total = last_step(out / "straight")
        targets = [round(total * (i + 1) / (args.kills + 1)) for i in range(args.kills)]
        cmd, steps = command(out, "killed", args.rows), []
        for target in targets:
            steps.append(killed_at(cmd, out / "killed", target))
            cmd = [*command(out, "killed", args.rows), "--resume"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        result = {"rows": args.rows, "steps": total, "killed_at": steps,
                  "straight_sha256": sha256(out / "straight" / "model" / "model.safetensors"),
                  "killed_sha256": sha256(out / "killed" / "model" / "model.safetensors")}
    result["identical"] = result["straight_sha256"] == result["killed_sha256"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kill_resume.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
