"""The UI's training queue: each run is an `lmtune train` process, one at a time, in the order started.

A process per run, not a thread: a run holds the CPU cores and hundreds of MB that only its exit gives back,
the CLI's own stop (SIGTERM: finish the step, save a checkpoint) and `--resume` work unchanged, and a crash
cannot take the web app down. One at a time because two trainings on the same cores each run many times slower
than both in turn. Progress is read back from the run's own train_log.jsonl, as any other reader of a run would.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from lmtune.config import Config, build_config, load_yaml
from lmtune.errors import UserError
from lmtune.io import read_jsonl, write_text
from lmtune.recipe import selection_metric
from lmtune.tasks import new_task

LOG_TAIL = 4000  # bytes of a job's console output the page shows
ACTIVE = ("queued", "running", "stopping")


@dataclass
class Job:
    id: int
    name: str
    command: list[str]
    log: Path
    state: str = "queued"  # queued → running → finished | failed | stopped; stopping in between; cancelled
    process: subprocess.Popen | None = None
    returncode: int | None = None
    ended_at: dict | None = None  # step and total when the process ended: a resumed run's log moves on


class JobQueue:
    def __init__(self, runs: Path):
        self.runs = runs
        self.folder = runs / ".ui" / "jobs"
        self.jobs: dict[int, Job] = {}
        self.ids = itertools.count(1)
        self.wake = threading.Condition()
        self.closed = False
        self.metrics: dict[str, str | None] = {}  # run name → the metric its evaluations are plotted by
        self.worker = threading.Thread(target=self._work, name="lmtune-ui-jobs", daemon=True)
        self.worker.start()

    def start(self, cfg: Config, yaml_text: str) -> Job:
        """Queue a new run of the config (its YAML as the page shows it); the run gets a folder name no other
        run or queued job has."""
        name = self._free_name(cfg.name)
        job_id = next(self.ids)
        config_file = self.folder / f"{job_id}.yaml"
        write_text(config_file, yaml_text)
        command = ["train", "-c", str(config_file), "--name", name, "--output-dir", str(self.runs)]
        return self._queue(job_id, name, command)

    def resume(self, name: str) -> Job:
        """Queue the stopped run `name` to continue from its last checkpoint."""
        if self._active(name):
            raise UserError(f"run {name!r} is already queued or running")
        return self._queue(next(self.ids), name, ["train", "--resume", "--name", name, "--output-dir", str(self.runs)])

    def stop(self, job_id: int) -> Job:
        """A queued job is dropped; a running one finishes its step and saves a checkpoint (the CLI's SIGTERM)."""
        with self.wake:
            job = self.jobs[job_id]
            if job.state == "queued":
                job.state = "cancelled"
            elif job.state == "running" and job.process is not None:
                job.state = "stopping"
                job.process.send_signal(signal.SIGTERM)
            return job

    def active_state(self, name: str) -> str | None:
        """queued, running or stopping while a job of run `name` is; None otherwise (no log read, unlike status)."""
        job = self._active(name)
        return job.state if job else None

    def status(self) -> list[dict]:
        with self.wake:
            jobs = sorted(self.jobs.values(), key=lambda j: -j.id)
        return [self._describe(job) for job in jobs]

    def close(self) -> None:
        """Stop the running job (with its checkpoint) and the worker; queued jobs are dropped."""
        with self.wake:
            self.closed = True
            for job in self.jobs.values():
                if job.state == "queued":
                    job.state = "cancelled"
            self.wake.notify_all()
        current = next((j for j in self.jobs.values() if j.state == "running"), None)
        if current is not None:
            self.stop(current.id)
        self.worker.join(timeout=120)

    def _queue(self, job_id: int, name: str, command: list[str]) -> Job:
        job = Job(job_id, name, [sys.executable, "-m", "lmtune.cli", *command], self.folder / f"{job_id}.log")
        with self.wake:
            self.jobs[job_id] = job
            self.wake.notify_all()
        return job

    def _active(self, name: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.name == name and j.state in ACTIVE), None)

    def _free_name(self, wanted: str) -> str:
        taken = {j.name for j in self.jobs.values()}
        for n in itertools.count(1):
            name = wanted if n == 1 else f"{wanted}-{n}"
            if name not in taken and not (self.runs / name).exists():
                return name
        raise AssertionError("unreachable")

    def _work(self) -> None:
        while True:
            with self.wake:
                while not self.closed and not any(j.state == "queued" for j in self.jobs.values()):
                    self.wake.wait()
                if self.closed:
                    return
                job = min((j for j in self.jobs.values() if j.state == "queued"), key=lambda j: j.id)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                with job.log.open("wb") as out:
                    job.process = subprocess.Popen(job.command, stdout=out, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL)
                job.state = "running"
            code = job.process.wait()
            reached = progress(self.runs / job.name, None)
            with self.wake:
                job.ended_at = {"step": reached["step"], "total_steps": reached["total_steps"], "eta_seconds": None}
                job.returncode = code
                job.state = "finished" if code == 0 else "stopped" if job.state == "stopping" else "failed"

    def _describe(self, job: Job) -> dict:
        out = {"id": job.id, "name": job.name, "state": job.state, "returncode": job.returncode,
               "resumed": "--resume" in job.command, **progress(self.runs / job.name, self._metric(job.name)),
               **(job.ended_at or {})}
        out["output"] = _tail(job.log)
        return out

    def _metric(self, name: str) -> str | None:
        if self.metrics.get(name) is None:
            self.metrics[name] = run_metric(self.runs / name)
        return self.metrics[name]


def _tail(path: Path) -> str:
    """The end of a job's console output, without reading a long log whole every second."""
    if not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(max(path.stat().st_size - LOG_TAIL, 0))
        return log.read().decode("utf-8", errors="replace")


def run_metric(run_dir: Path) -> str | None:
    """The validation metric the run picks its best checkpoint by, once its config.yaml is written."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return None
    cfg = build_config(load_yaml(saved))
    return selection_metric(cfg.train.metric, new_task(cfg))["metric"]


def progress(run_dir: Path, metric: str | None) -> dict:
    """{"step", "total_steps", "eta_seconds", "loss": [[step, loss]], "metric", "evals": [[step, value]]} from a
    run's train_log.jsonl, as far as it has got."""
    records = read_jsonl(run_dir / "train_log.jsonl") if (run_dir / "train_log.jsonl").exists() else []
    losses = [r for r in records if "loss" in r]
    last = losses[-1] if losses else {}
    step, total = last.get("step"), last.get("total_steps")
    eta = round(last["elapsed"] / step * (total - step), 1) if step and total and "elapsed" in last else None
    evals = [[r["step"], r["eval"][metric]] for r in records if "eval" in r and metric in r["eval"]]
    return {"step": step, "total_steps": total, "eta_seconds": eta, "loss": [[r["step"], r["loss"]] for r in losses],
            "metric": metric, "evals": evals}
