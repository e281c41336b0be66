"""Progress of anything that takes a while (training, evaluation, generation, baselines): a live bar with ETA on a
terminal, plain lines at least every LINE_EVERY seconds in logs and CI."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

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


LINE_EVERY = 30.0  # seconds: the longest a log goes without a line from a running job
SHOW_AFTER = 3.0  # seconds: work done sooner shows no bar (evaluating minilm takes a fraction of one)


def _eta(elapsed: float, done: int, left: int) -> float:
    return elapsed / max(done, 1) * left


def _bar(label: str, console: Console, *extra: TextColumn, **options) -> Progress:
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), *extra, console=console, **options)


class TrainProgress:
    def __init__(self, total: int, start: int, enabled: bool, console: Console | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.console = console or Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.enabled, self.total, self.clock = enabled, total, clock
        self.started = self.last_line = clock()
        self.start_step = start
        self.bar = _bar("train", self.console, TextColumn("{task.fields[info]}"), disable=not self.live)
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
        now = self.clock()
        if self.enabled and not self.live and (record or now - self.last_line >= LINE_EVERY):
            self.last_line = now
            eta = _eta(now - self.started, step - self.start_step, self.total - step)
            line = "  ".join(part for part in (f"step {step}/{self.total}", info, f"ETA {eta:.0f}s") if part)
            print(line, file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)


class WorkProgress:
    """Progress of a job's other long stretches. A bar (gone when done) appears on a terminal once the work has
    taken SHOW_AFTER seconds; without a terminal a line comes every LINE_EVERY seconds. Only the main process's
    main thread shows it: the server predicts in worker threads, and every process of a distributed run evaluates.
    """

    def __init__(self, label: str, total: int, console: Console | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.console = console or Console(stderr=True)
        self.enabled = threading.current_thread() is threading.main_thread() and os.environ.get("RANK", "0") == "0"
        self.live = self.enabled and self.console.is_terminal
        self.label, self.total, self.done, self.clock = label, total, 0, clock
        self.started = self.last_line = clock()
        self.bar = _bar(label, self.console, transient=True)
        self.task = None

    def __enter__(self) -> WorkProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:
            self.bar.stop()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.live and self.task is None and now - self.started >= SHOW_AFTER:
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        if self.task is not None:
            self.bar.update(self.task, completed=self.done)
        elif self.enabled and not self.live and now - self.last_line >= LINE_EVERY:
            self.last_line = now
            eta = _eta(now - self.started, self.done, self.total - self.done)
            print(f"{self.label} {self.done}/{self.total}  ETA {eta:.0f}s", file=sys.stderr, flush=True)
