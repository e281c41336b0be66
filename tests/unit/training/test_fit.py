"""`fit` on a toy objective (an embedding, a dropout and a linear layer; no transformers model): step counts,
gradient accumulation, early stopping, best-weight restore and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmtune.config import TrainConfig
from lmtune.errors import Interrupted
from lmtune.io import read_jsonl
from lmtune.training.device import make_accelerator
from lmtune.training.loop import FitResult, Objective, fit

VOCAB = 13


class Toy(torch.nn.Module):
    def __init__(self, dropout: float):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 4)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(4, 1)

    def forward(self, input_ids, attention_mask, labels):
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return ((self.head(self.drop(pooled)).squeeze(-1) - labels) ** 2).mean()


def toy_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    return model(**batch)


def rows(n: int, length: int | None = None) -> list[dict]:
    return [{"input_ids": [(3 * i + j) % VOCAB for j in range(length or 2 + i % 4)], "labels": float(i % 3)}
            for i in range(n)]


def collate(features: list[dict]) -> dict:
    width = max(len(f["input_ids"]) for f in features)
    return {"input_ids": torch.tensor([f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in features]),
            "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                            for f in features]),
            "labels": torch.tensor([f["labels"] for f in features])}


def train(features: list[dict], run_dir: Path, objective: Objective | None = None, dropout: float = 0.0,
          resume: bool = False, track=None, **settings) -> tuple[FitResult, Toy]:
    """Plain SGD at a constant rate, unclipped: an update is exactly lr x the batch's mean gradient."""
    cfg = TrainConfig(**{"precision": "fp32", "optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0,
                         "max_grad_norm": None, "scheduler": "constant", "warmup": 0, "lr": 0.1, "log_every": 1,
                         "micro_batch_tokens": None, "sparse_embeddings": False, "seed": 0, **settings})
    torch.manual_seed(cfg.seed)  # what lmtune.api does before building the model
    model = Toy(dropout)
    result = fit(make_accelerator(cfg), model, features, collate, [len(f["input_ids"]) for f in features], cfg,
                 objective or Objective(loss=toy_loss), run_dir, resume=resume, track=track)
    return result, model


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def logged_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(run_dir / "train_log.jsonl") if "loss" in r]


@pytest.mark.parametrize(("settings", "steps"), [
    ({"epochs": 2}, 6),  # 10 rows in batches of 4: 3 steps an epoch
    ({"epochs": 1.5}, 5),  # part of an epoch rounds up
    ({"epochs": 3, "max_steps": 4}, 4),
    ({"epochs": 1, "min_steps": 7}, 9),  # raised by whole epochs: 3 of them
    ({"epochs": 1, "min_steps": 2}, 3),  # already enough
])
def test_steps_follow_epochs_max_steps_and_min_steps(tmp_path, settings, steps):
    result, _ = train(rows(10), tmp_path, batch_size=4, **settings)
    assert result.steps == steps
    assert logged_steps(tmp_path) == list(range(1, steps + 1))


def test_two_accumulated_batches_make_one_update_of_their_mean_gradient(tmp_path):
    features = rows(4, length=3)  # equal lengths: every batch of 2 holds half the rows, whichever they are
    plain, _ = train(features, tmp_path / "plain", batch_size=2, epochs=3)
    accumulated, model = train(features, tmp_path / "accumulated", batch_size=2, grad_accum=2, epochs=3)
    whole, reference = train(features, tmp_path / "whole", batch_size=4, epochs=3)
    assert (plain.steps, accumulated.steps, whole.steps) == (6, 3, 3)
    # Each update sees all 4 rows in both runs; only the order of the additions differs.
    for name, value in weights(model).items():
        torch.testing.assert_close(value, weights(reference)[name], rtol=0, atol=1e-6)
    torch.manual_seed(0)
    assert not torch.equal(weights(model)["head.weight"], weights(Toy(0.0))["head.weight"])  # it did train


def scripted(metric: str, values: list[float], snapshots: list[dict]):
    """An evaluation that returns `values` in turn and keeps the weights it saw."""
    def evaluate(model: torch.nn.Module) -> dict:
        snapshots.append(weights(model))
        return {metric: values[len(snapshots) - 1]}

    return evaluate


def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path):
    snapshots: list[dict] = []
    # Lower is better, and an equal value is no improvement.
    objective = Objective(loss=toy_loss, evaluate=scripted("loss", [1.0, 0.5, 0.6, 0.5, 0.1, 0.05], snapshots))
    result, _ = train(rows(8), tmp_path, objective, batch_size=2, max_steps=20, eval_every=1,
                      early_stopping_patience=2)
    assert result.stopped_early
    assert result.steps == 4
    assert len(snapshots) == 4 and [r["step"] for r in result.history] == [1, 2, 3, 4]  # none after the stop
    assert result.best["step"] == 2 and result.best["eval"]["loss"] == 0.5
    assert logged_steps(tmp_path) == [1, 2, 3, 4]


def test_the_weights_of_the_best_evaluation_come_back_at_the_end(tmp_path):
    snapshots: list[dict] = []
    evaluate = scripted("accuracy", [0.1, 0.9, 0.5, 0.3], snapshots)
    objective = Objective(loss=toy_loss, evaluate=evaluate, metric="accuracy", higher_is_better=True)
    result, model = train(rows(8), tmp_path, objective, batch_size=2, max_steps=4, eval_every=1)
    assert not result.stopped_early and result.best["step"] == 2
    assert len(snapshots) == 4
    final = weights(model)
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[-1][k]) for k in final)


def data_loss(features: list[dict]):
    batch = collate(features)

    def evaluate(model: torch.nn.Module) -> dict:
        with torch.no_grad():
            return {"loss": model(**batch).item()}

    return evaluate


@pytest.mark.parametrize(("stop_at", "old_state"), [(3, True), (5, False), (7, False)])
def test_an_interrupted_run_resumes_to_the_uninterrupted_one(tmp_path, stop_at, old_state):
    """Interrupted after the checkpoint of step stop_at - 1: within the first epoch (2), at its end (4), within the
    second after an evaluation (6). Earlier versions saved no eval_seconds before a run's first evaluation
    (old_state)."""
    features = rows(7)  # batches of 2: 4 an epoch, the last one smaller
    settings = {"batch_size": 2, "max_steps": 10, "save_every": 2, "eval_every": 3}

    def objective():
        return Objective(loss=toy_loss, evaluate=data_loss(features))

    whole, whole_model = train(features, tmp_path / "whole", objective(), dropout=0.5, **settings)

    def interrupt(record: dict) -> None:
        if record["step"] == stop_at and "loss" in record:
            raise KeyboardInterrupt

    run_dir = tmp_path / "stopped"
    with pytest.raises(Interrupted, match=f"in step {stop_at + 1}"):
        train(features, run_dir, objective(), dropout=0.5, track=interrupt, **settings)
    assert [p.name for p in (run_dir / "checkpoints").glob("step-*")] == [f"step-{stop_at - 1:07d}"]
    if old_state:
        path = run_dir / "checkpoints" / f"step-{stop_at - 1:07d}" / "trainer_state.json"
        state = json.loads(path.read_text())
        del state["eval_seconds"]
        path.write_text(json.dumps(state))
    seen: list[dict] = []
    resumed, model = train(features, run_dir, objective(), dropout=0.5, resume=True, track=seen.append, **settings)

    assert [r["step"] for r in seen if "loss" in r] == list(range(stop_at, 11))  # it went on, not from the start
    assert resumed.steps == whole.steps == 10
    final, expected = weights(model), weights(whole_model)
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    assert [r["eval"] for r in resumed.history] == [r["eval"] for r in whole.history]
    assert [r["step"] for r in resumed.history] == [3, 6, 9, 10]
    log = read_jsonl(run_dir / "train_log.jsonl")
    losses = [(r["step"], r["loss"]) for r in log if "loss" in r]
    assert losses == [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "whole" / "train_log.jsonl")
                      if "loss" in r]
    assert [r["step"] for r in log if "eval" in r] == [3, 6, 9, 10]
