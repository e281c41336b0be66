"""Progress while training: a live bar with ETA on a terminal, periodic plain lines in logs and CI."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Meter:
    """Throughput since the last report: samples/s and (non-padding) tokens/s."""

    def __init__(self) -> None:
        self.samples = self.tokens = 0
        self.since = time.perf_counter()

    def add(self, samples: int, tokens: int) -> None:
        self.samples += samples
        self.tokens += tokens

    def pause(self, seconds: float) -> None:
        """Leave time spent on something else (an evaluation) out of the rates."""
        self.since += seconds

    def rates(self) -> dict[str, float]:
        now = time.perf_counter()
        dt = max(now - self.since, 1e-9)
        out = {"samples_per_s": round(self.samples / dt, 2), "tokens_per_s": round(self.tokens / dt, 1)}
        self.samples = self.tokens = 0
        self.since = now
        return out


class TrainProgress:
    def __init__(self, total: int, start: int, enabled: bool, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.enabled, self.total, self.started = enabled, total, time.perf_counter()
        self.start_step = start
        self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                            console=self.console, disable=not self.live)
        self.task = self.bar.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> TrainProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, step: int, record: dict | None = None) -> None:
        info = ""
        if record:
            info = f"loss {record['loss']:.4f}  {record['samples_per_s']:.0f} samples/s"
        self.bar.update(self.task, completed=step, **({"info": info} if info else {}))
        if record and self.enabled and not self.live:
            done = step - self.start_step
            eta = (time.perf_counter() - self.started) / max(done, 1) * (self.total - step)
            print(f"step {step}/{self.total}  {info}  ETA {eta:.0f}s", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)
