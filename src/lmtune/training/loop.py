"""The training loop: one screen, task-agnostic.

It sees a model, a tokenised training set, a collator, a loss function and an evaluation function; tasks
bring everything else. Accelerate wraps devices, mixed precision and multi-process runs (we use its
`prepare`/`backward`/`accumulate`, never a home-made distributed layer).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from lmtune.config import TrainConfig
from lmtune.errors import ConfigError, Interrupted
from lmtune.io import append_jsonl, read_jsonl, write_jsonl
from lmtune.training import checkpoint, sparse_embeddings
from lmtune.training.batching import LengthGroupedBatches, micro_batch_tokens, micro_batches
from lmtune.training.bf16_weights import Bf16FrozenWeights
from lmtune.training.dropout import fast_dropout
from lmtune.training.long_rows import LongRows
from lmtune.training.memory import releaser
from lmtune.training.optim import build_optimizer, build_scheduler
from lmtune.training.progress import Meter, TrainProgress

LossFn = Callable[[torch.nn.Module, dict], torch.Tensor]
EvalFn = Callable[[torch.nn.Module], dict]
UnitsFn = Callable[[dict], int]


@dataclass
class FitResult:
    steps: int
    seconds: float
    eval_seconds: float = 0.0  # evaluations and best-weight saves, included in `seconds`
    best: dict | None = None
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False


@dataclass
class Objective:
    """What the loop needs from a task: how to score a batch and how to evaluate the model."""

    loss: LossFn
    evaluate: EvalFn | None = None
    metric: str = "loss"
    higher_is_better: bool = False
    units: UnitsFn | None = None  # what the loss is a mean over, e.g. scored tokens (None = rows)


@dataclass
class FitState:
    """Where a run stands; a checkpoint holds it as a plain dict (JSON, never pickled), which a resumed run reads
    back."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already trained on
    best: float | None = None
    bad_evals: int = 0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    eval_seconds: float = 0.0  # absent from older checkpoints saved before the run's first evaluation


def fit(accelerator: Accelerator, model: torch.nn.Module, train_set, collate, lengths: list[int],
        cfg: TrainConfig, objective: Objective, run_dir: Path, resume: bool = False,
        track: Callable[[dict], None] | None = None) -> FitResult:
    """Train; every logged record also goes to `track` (experiment trackers) on the main process."""
    sampler = LengthGroupedBatches(lengths, cfg.batch_size, cfg.seed, shuffle=True, max_tokens=cfg.max_tokens)
    if not cfg.group_by_length:
        sampler.group = 1
    # Its own generator: a DataLoader without one draws a seed from torch's global generator whenever an epoch's
    # iterator starts, which would shift a resumed run's dropout masks against the uninterrupted run's.
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                        generator=torch.Generator().manual_seed(cfg.seed))
    # Under DDP each process takes every num_processes-th batch, so an epoch has that many fewer steps.
    per_epoch = math.ceil(math.ceil(len(sampler) / accelerator.num_processes) / cfg.grad_accum)
    micro_tokens = micro_batch_tokens(cfg.micro_batch_tokens, model, accelerator.device)
    total = cfg.max_steps or planned_steps(cfg, per_epoch, accelerator.is_main_process)
    sparse_embeddings.prepare(model, cfg, accelerator.num_processes)  # the model's one change before training
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, total)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    long_rows = LongRows(accelerator.unwrap_model(model), micro_tokens, max(lengths, default=0))
    run = _Run(accelerator, model, optimizer, scheduler, sampler, cfg, objective, run_dir, track)
    state, resumed_from = run.start(resume)
    stop = False
    model.train()
    with (TrainProgress(total, state.step, accelerator.is_main_process) as progress, StopRequests() as stops,
          fast_dropout(accelerator.unwrap_model(model), cfg.fast_dropout), run.bf16_weights):
        try:
            while state.step < total and not stop:
                sampler.set_epoch(state.epoch)
                # Accelerate's loader re-sets its batch sampler's epoch to its own count of passes, which a
                # resumed run's fresh loader starts again from 0.
                loader.set_epoch(state.epoch)
                batches = iter(accelerator.skip_first_batches(loader, state.batch) if state.batch else loader)
                if resumed_from:
                    # Now, not at load time: where the uninterrupted run stood when it saved these states.
                    checkpoint.restore_rng(resumed_from, accelerator.process_index)
                    resumed_from = None
                for batch in batches:
                    with accelerator.accumulate(model):
                        loss = backward(accelerator, model, objective,
                                        micro_batches(batch, micro_tokens, objective.units), long_rows)
                        if accelerator.sync_gradients:
                            run.update()
                    state.batch += 1
                    run.count(loss, batch)
                    if not accelerator.sync_gradients:
                        continue
                    state.step += 1
                    stop = run.step_done(state, total, progress)
                    if stop or state.step >= total:
                        break
                    if stops.agreed(accelerator):
                        run.save(state)
                        raise Interrupted(f"stopped after step {state.step}; checkpoint saved, continue with --resume")
                else:
                    state.epoch, state.batch = state.epoch + 1, 0
                    if objective.evaluate and not cfg.eval_every:
                        stop = run.evaluate_and_save(state, progress)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted in step {state.step + 1}; the run continues from its last checkpoint "
                              "with --resume") from None

        last_eval = state.history[-1]["step"] if state.history else None
        if objective.evaluate and last_eval != state.step:
            stop = run.evaluate(state, progress) or stop
    accelerator.wait_for_everyone()
    run.restore_best()
    return FitResult(steps=state.step, seconds=round(run.elapsed(), 2), eval_seconds=round(state.eval_seconds, 2),
                     best=_best_record(state.history, state.best, objective.metric), history=state.history,
                     stopped_early=stop)


class _Run:
    """What `fit` does besides forward and backward passes: the optimizer update, the train log, checkpoints and
    evaluations."""

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler, sampler: LengthGroupedBatches, cfg: TrainConfig, objective: Objective, run_dir: Path,
                 track: Callable[[dict], None] | None):
        self.accelerator, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.sampler, self.cfg, self.objective, self.track = sampler, cfg, objective, track
        self.ckpt_dir, self.log_path = run_dir / "checkpoints", run_dir / "train_log.jsonl"
        self.best_path = self.ckpt_dir / checkpoint.BEST
        self.bf16_weights = Bf16FrozenWeights(accelerator.unwrap_model(model),
                                              self.ckpt_dir / f"frozen-fp32-{accelerator.process_index}.safetensors",
                                              cfg.bf16_frozen_weights and accelerator.mixed_precision == "bf16")
        self.release = releaser() if cfg.release_memory else None

    def start(self, resume: bool) -> tuple[FitState, Path | None]:
        """A fresh state, or when resuming the latest checkpoint's (weights, optimizer and scheduler loaded), with
        the checkpoint whose RNG states are still to be restored."""
        saved = checkpoint.load_latest(self.accelerator, self.ckpt_dir, self.model, self.optimizer,
                                       self.scheduler) if resume else None
        state = FitState(**saved[0]) if saved else FitState()
        if self.accelerator.is_main_process:
            # The log goes back to where the checkpoint was, so that no step is logged twice.
            kept = [r for r in read_jsonl(self.log_path) if r["step"] <= state.step] if saved else []
            write_jsonl(self.log_path, kept)
        self.started, self.offset = time.perf_counter(), state.seconds
        self.meter, self.loss_sum, self.loss_n = Meter(), 0.0, 0
        return state, saved[1] if saved else None

    def elapsed(self) -> float:
        return self.offset + time.perf_counter() - self.started

    def log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            append_jsonl(self.log_path, record)
            if self.track:
                self.track(record)

    def update(self) -> None:
        if self.cfg.max_grad_norm:
            clip_gradients(self.accelerator, self.model, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.release:
            self.release()

    def count(self, loss: float, batch: dict) -> None:
        """One batch's loss and size, for the next log record's mean loss and speed."""
        self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1
        self.meter.add(len(batch["input_ids"]), int(batch["attention_mask"].sum()))

    def step_done(self, state: FitState, total: int, progress: TrainProgress) -> bool:
        """After an optimizer step: the train-log record every log_every steps and at the last one, then the
        evaluation and checkpoint due at this step; True when early stopping says stop."""
        if state.step % self.cfg.log_every == 0 or state.step == total:
            # total_steps lets a reader of the log alone (the web UI) show progress and an ETA.
            record = {"step": state.step, "total_steps": total, "loss": round(self.loss_sum / self.loss_n, 5),
                      "lr": self.scheduler.get_last_lr()[0], "elapsed": round(self.elapsed(), 2), **self.meter.rates()}
            self.loss_sum, self.loss_n = 0.0, 0
            self.log(record)
            progress.update(state.step, record)
        else:
            progress.update(state.step)
        stop = False
        if self.objective.evaluate and self.cfg.eval_every and state.step % self.cfg.eval_every == 0:
            stop = self.evaluate_and_save(state, progress)
        if self.cfg.save_every and state.step % self.cfg.save_every == 0:
            self.save(state)
        return stop

    def save(self, state: FitState) -> None:
        state.seconds = self.elapsed()
        checkpoint.save(self.accelerator, self.ckpt_dir, asdict(state), self.cfg.keep_checkpoints, self.model,
                        self.optimizer, self.scheduler)

    def evaluate_and_save(self, state: FitState, progress: TrainProgress) -> bool:
        """A scheduled evaluation; a checkpoint goes with it unless train.save_every times them."""
        stop = self.evaluate(state, progress)
        if not self.cfg.save_every:
            self.save(state)
        return stop

    def evaluate(self, state: FitState, progress: TrainProgress) -> bool:
        """Evaluate, keep the best weights; True when early stopping says stop."""
        metric = self.objective.metric
        t0 = time.perf_counter()
        metrics = self._metrics()
        spent = time.perf_counter() - t0
        # train_seconds leaves every evaluation out, so time-to-accuracy compares with tools that pause their clock.
        record = {"step": state.step, "epoch": round(state.epoch + state.batch / len(self.sampler), 3),
                  "eval": metrics, "eval_seconds": round(spent, 3),
                  "train_seconds": round(self.elapsed() - state.eval_seconds - spent, 3)}
        state.history.append(record)
        self.log(record)
        self._keep_if_best(state, metrics[metric])
        spent = time.perf_counter() - t0
        state.eval_seconds += spent
        self.meter.pause(spent)
        progress.note(f"step {state.step}: {metric} = {metrics[metric]:.4f} (best {state.best:.4f})")
        patience = self.cfg.early_stopping_patience
        return bool(patience and state.bad_evals >= patience)

    def _metrics(self) -> dict:
        self.model.eval()
        with self.bf16_weights.restored():
            metrics = self.objective.evaluate(self.accelerator.unwrap_model(self.model))
        self.model.train()
        if self.objective.metric not in metrics:
            names = ", ".join(k for k, v in metrics.items() if isinstance(v, int | float))
            raise ConfigError(f"train.metric={self.objective.metric!r} is not a validation metric here; "
                              f"choose one of: {names}")
        return metrics

    def _keep_if_best(self, state: FitState, value: float) -> None:
        """The best value so far, with its trainable weights for `restore_best`, or one more evaluation without
        improvement."""
        if state.best is None or (value > state.best if self.objective.higher_is_better else value < state.best):
            state.best, state.bad_evals = value, 0
            if self.accelerator.is_main_process:
                self.ckpt_dir.mkdir(parents=True, exist_ok=True)
                checkpoint.save_trainable(self.accelerator.unwrap_model(self.model), self.best_path)
        else:
            state.bad_evals += 1

    def restore_best(self) -> None:
        if self.best_path.exists():
            checkpoint.load_trainable(self.accelerator.unwrap_model(self.model), self.best_path)


def planned_steps(cfg: TrainConfig, per_epoch: int, announce: bool) -> int:
    """cfg.epochs' steps, raised by whole epochs to cfg.min_steps."""
    steps = math.ceil(cfg.epochs * per_epoch)
    if cfg.min_steps is None or steps >= cfg.min_steps:
        return steps
    epochs = math.ceil(cfg.min_steps / per_epoch)
    if announce:
        print(f"epochs: {epochs} instead of {cfg.epochs:g}: {per_epoch} steps an epoch, and a small dataset needs at "
              f"least train.min_steps={cfg.min_steps} updates to learn (--set train.min_steps=null: exactly "
              "--epochs)")
    return epochs * per_epoch


def clip_gradients(accelerator: Accelerator, model: torch.nn.Module, max_norm: float) -> None:
    """Accelerate's clipping (it unscales fp16 and knows DeepSpeed/FSDP), unless a gradient is sparse: torch's
    clip_grad_norm_ cannot take those (sparse_embeddings.clip_sparse)."""
    if any(p.grad is not None and p.grad.is_sparse for p in model.parameters()):
        sparse_embeddings.clip_sparse(accelerator, model, max_norm)
    else:
        accelerator.clip_grad_norm_(model.parameters(), max_norm)


def backward(accelerator: Accelerator, model: torch.nn.Module, objective: Objective,
             pieces: list[tuple[dict, float]], long_rows: LongRows | None = None) -> float:
    """Gradients of the batch's mean loss, one micro-batch at a time (processes synchronise after the last one);
    returns the loss."""
    loss = 0.0
    for i, (piece, share) in enumerate(pieces):
        with (accelerator.no_sync(model) if i < len(pieces) - 1 else nullcontext(),
              long_rows.fitted(piece["input_ids"].numel()) if long_rows else nullcontext()):
            part = objective.loss(model, piece) * share
            accelerator.backward(part)
        loss += part.item()
    return loss


class StopRequests:
    """SIGTERM (schedulers, `kill`) and a first Ctrl-C ask the run to stop at the end of the step it is in, where a
    checkpoint holds a consistent state: raised in the middle of a step, the interrupt left a checkpoint whose
    weights, optimizer, counters and random state disagreed, and the resumed run drifted. A second Ctrl-C stops at
    once, without a checkpoint."""

    def __init__(self):
        self.requested = False

    def __enter__(self) -> StopRequests:
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("stopping at the end of this step to save a checkpoint (Ctrl-C again: stop now, unsaved)",
              file=sys.stderr, flush=True)

    def agreed(self, accelerator: Accelerator) -> bool:
        """Whether to stop now: every process stops at the same step, or the others would wait for it forever."""
        if accelerator.num_processes == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item())


def _best_record(history: list[dict], best: float | None, metric: str) -> dict | None:
    for record in history:
        if record["eval"][metric] == best:
            return record
    return None
