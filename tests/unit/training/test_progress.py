"""Progress without a terminal: a line at least every LINE_EVERY seconds, nothing for quick work."""

from __future__ import annotations

import io

from rich.console import Console

from lmtune.training.progress import LINE_EVERY, TrainProgress, WorkProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_long_work_logs_a_line_every_interval_and_quick_work_none(capsys):
    clock = Clock()
    with WorkProgress("generate", 10, console=plain_console(), clock=clock) as progress:
        for _ in range(10):
            clock.now += LINE_EVERY / 2
            progress.advance()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["generate 2/10  ETA 120s", "generate 4/10  ETA 90s", "generate 6/10  ETA 60s",
                     "generate 8/10  ETA 30s", "generate 10/10  ETA 0s"]
    with WorkProgress("evaluate", 3, console=plain_console(), clock=clock) as progress:
        for _ in range(3):
            clock.now += 1
            progress.advance()
    assert capsys.readouterr().err == ""


def test_training_logs_between_records_when_they_are_far_apart(capsys):
    clock = Clock()
    progress = TrainProgress(100, 0, enabled=True, console=plain_console(), clock=clock)
    clock.now = LINE_EVERY - 1
    progress.update(1)
    assert capsys.readouterr().err == ""
    clock.now = LINE_EVERY
    progress.update(2)
    assert capsys.readouterr().err.splitlines() == ["step 2/100  ETA 1470s"]
    progress.update(3, {"loss": 0.5, "samples_per_s": 4.0})
    assert capsys.readouterr().err.splitlines() == ["step 3/100  loss 0.5000  4 samples/s  ETA 970s"]


def test_generation_advances_a_step_per_token(tiny_llama, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmtune.generation import generate

    totals, steps = [], []

    class Recorder(WorkProgress):
        def __init__(self, label: str, total: int, **kwargs):
            super().__init__(label, total, **kwargs)
            totals.append(total)

        def advance(self, n: int = 1) -> None:
            steps.append(n)
            super().advance(n)

    monkeypatch.setattr(generate, "WorkProgress", Recorder)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    generator = generate.Generator(model, AutoTokenizer.from_pretrained(tiny_llama))
    generator.generate(["hello", "who are you", "the cat"], generate.Settings(max_new_tokens=4), batch_size=2)
    assert totals == [8] and sum(steps) == 8 and steps.count(1) >= 4
