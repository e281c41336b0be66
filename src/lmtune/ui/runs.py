"""The run folders under the UI's runs folder, and the `lmtune serve` processes it starts for them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from fastapi import HTTPException

from lmtune.config import load_yaml
from lmtune.tasks import task_type
from lmtune.ui.jobs import JobQueue

NAME = re.compile(r"[\w.\-]+")


def run_dir(runs: Path, name: str) -> Path:
    """The folder of run `name`: a direct child of the runs folder, never a path elsewhere."""
    path = runs / name
    if not NAME.fullmatch(name) or name.startswith(".") or not (path / "config.yaml").exists():
        raise HTTPException(404, f"no run {name!r} in {runs}")
    return path


def list_runs(runs: Path, jobs: JobQueue) -> list[dict]:
    found = []
    for path in sorted(runs.glob("*/config.yaml"), key=lambda p: -p.stat().st_mtime):
        folder, config = path.parent, load_yaml(path)  # config.yaml only: a run's predictions may be large
        finished = (folder / "metrics.json").exists()
        stopped = (folder / "checkpoints").is_dir()
        state = jobs.active_state(folder.name) or ("finished" if finished else "stopped" if stopped else "incomplete")
        task = config.get("task", {}).get("name", "")
        pairs = config.get("data", {}).get("text_pair_column") is not None
        # What the Try page asks for: the task's input fields, a second text only where the run read pairs, and
        # a tagger's text rather than its pre-split tokens.
        inputs = [f for f in task_type(task).input_fields if f != "tokens" and (f != "text_pair" or pairs)]
        found.append({"name": folder.name, "task": task, "state": state, "model": config.get("model", {}).get("name"),
                      "method": config.get("method", {}).get("name"), "kind": task_type(task).model_kind,
                      "onnx": (folder / "onnx").is_dir(), "inputs": inputs})
    return found


class RunServers:
    """`lmtune serve` processes, one per run, on this machine's loopback address only."""

    def __init__(self, runs: Path):
        self.runs = runs
        self.processes: dict[str, tuple[subprocess.Popen, int, str]] = {}

    def start(self, name: str, port: int, variant: str) -> dict:
        path = run_dir(self.runs, name)
        if self.serving(name):
            raise HTTPException(409, f"run {name!r} is already served on port {self.processes[name][1]}")
        if any(p == port for _, p, _ in self.processes.values()) or not 1024 <= port <= 65535:
            raise HTTPException(409, f"port {port} is taken or out of range (1024-65535)")
        source = path / "onnx" if variant in ("fp32", "int8") else path
        if not source.exists():
            raise HTTPException(409, f"run {name!r} has no ONNX export yet: export it first")
        command = [sys.executable, "-m", "lmtune.cli", "serve", str(source), "--host", "127.0.0.1",
                   "--port", str(port), *(["--onnx-variant", variant] if source != path else [])]
        log = self.runs / ".ui" / f"serve-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes[name] = (process, port, variant)
        return self._describe(name)

    def serving(self, name: str) -> bool:
        return name in self.processes and self.processes[name][0].poll() is None

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, (None,))[0]
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

    def status(self) -> list[dict]:
        return [self._describe(name) for name in self.processes]

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def _describe(self, name: str) -> dict:
        process, port, variant = self.processes[name]
        state = "ready" if _healthy(port) else "starting" if process.poll() is None else "exited"
        body = json.dumps({"inputs": ["a text to classify"]})
        return {"name": name, "port": port, "variant": variant, "state": state,
                "curl": f"curl -s 127.0.0.1:{port}/predict -H 'content-type: application/json' -d '{body}'"}


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as answer:
            return answer.status == 200
    except OSError:
        return False
