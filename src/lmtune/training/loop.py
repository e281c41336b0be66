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
from dataclasses import dataclass, field
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
    ckpt_dir, log_path = run_dir / "checkpoints", run_dir / "train_log.jsonl"
    long_rows = LongRows(accelerator.unwrap_model(model), micro_tokens, max(lengths, default=0))
    bf16_weights = Bf16FrozenWeights(accelerator.unwrap_model(model),
                                     ckpt_dir / f"frozen-fp32-{accelerator.process_index}.safetensors",
                                     cfg.bf16_frozen_weights and accelerator.mixed_precision == "bf16")
    state = {"step": 0, "epoch": 0, "batch": 0, "best": None, "bad_evals": 0, "history": [], "seconds": 0.0}
    saved = checkpoint.load_latest(accelerator, ckpt_dir, model, optimizer, scheduler) if resume else None
    state, resumed_from = saved or (state, None)
    if accelerator.is_main_process:
        # The log goes back to where the checkpoint was, so that no step is logged twice.
        kept = [r for r in read_jsonl(log_path) if r["step"] <= state["step"]] if saved else []
        write_jsonl(log_path, kept)
    best_path = ckpt_dir / checkpoint.BEST

    def log(record: dict) -> None:
        if accelerator.is_main_process:
            append_jsonl(log_path, record)
            if track:
                track(record)

    def save() -> None:
        state["seconds"] = elapsed()
        checkpoint.save(accelerator, ckpt_dir, state, cfg.keep_checkpoints, model, optimizer, scheduler)

    def stopped() -> None:
        save()
        raise Interrupted(f"stopped after step {state['step']}; checkpoint saved, continue with --resume")

    started, offset = time.perf_counter(), state["seconds"]

    def elapsed() -> float:
        return offset + time.perf_counter() - started

    def run_eval() -> bool:
        """Evaluate, remember the best weights; True when early stopping says stop."""
        model.eval()
        t0 = time.perf_counter()
        with bf16_weights.restored():
            metrics = objective.evaluate(accelerator.unwrap_model(model))
        model.train()
        if objective.metric not in metrics:
            names = ", ".join(k for k, v in metrics.items() if isinstance(v, int | float))
            raise ConfigError(f"train.metric={objective.metric!r} is not a validation metric here; "
                              f"choose one of: {names}")
        value = metrics[objective.metric]
        spent = time.perf_counter() - t0
        # train_seconds leaves every evaluation out, so time-to-accuracy compares with tools that pause their clock.
        record = {"step": state["step"], "epoch": round(state["epoch"] + state["batch"] / len(sampler), 3),
                  "eval": metrics, "eval_seconds": round(spent, 3),
                  "train_seconds": round(elapsed() - state.get("eval_seconds", 0.0) - spent, 3)}
        state["history"].append(record)
        log(record)
        best = state["best"]
        if best is None or (value > best if objective.higher_is_better else value < best):
            state["best"], state["bad_evals"] = value, 0
            if accelerator.is_main_process:
                ckpt_dir.mkdir(parents=True, exist_ok=True)
                checkpoint.save_trainable(accelerator.unwrap_model(model), best_path)
        else:
            state["bad_evals"] += 1
        spent = time.perf_counter() - t0
        state["eval_seconds"] = state.get("eval_seconds", 0.0) + spent
        meter.pause(spent)
        progress.note(f"step {state['step']}: {objective.metric} = {value:.4f} (best {state['best']:.4f})")
        return bool(cfg.early_stopping_patience and state["bad_evals"] >= cfg.early_stopping_patience)

    meter, stop, loss_sum, loss_n = Meter(), False, 0.0, 0
    release = releaser() if cfg.release_memory else None
    model.train()
    with (TrainProgress(total, state["step"], accelerator.is_main_process) as progress, StopRequests() as stops,
          fast_dropout(accelerator.unwrap_model(model), cfg.fast_dropout), bf16_weights):
        try:
            while state["step"] < total and not stop:
                sampler.set_epoch(state["epoch"])
                # Accelerate's loader re-sets its batch sampler's epoch to its own count of passes, which a
                # resumed run's fresh loader starts again from 0.
                loader.set_epoch(state["epoch"])
                batches = iter(accelerator.skip_first_batches(loader, state["batch"]) if state["batch"] else loader)
                if resumed_from:
                    # Now, not at load time: where the uninterrupted run stood when it saved these states.
                    checkpoint.restore_rng(resumed_from, accelerator.process_index)
                    resumed_from = None
                for batch in batches:
                    with accelerator.accumulate(model):
                        loss = backward(accelerator, model, objective,
                                        micro_batches(batch, micro_tokens, objective.units), long_rows)
                        if accelerator.sync_gradients:
                            if cfg.max_grad_norm:
                                clip_gradients(accelerator, model, cfg.max_grad_norm)
                            optimizer.step()
                            scheduler.step()
                            optimizer.zero_grad(set_to_none=True)
                            if release:
                                release()
                    state["batch"] += 1
                    loss_sum, loss_n = loss_sum + loss, loss_n + 1
                    meter.add(len(batch["input_ids"]), int(batch["attention_mask"].sum()))
                    if not accelerator.sync_gradients:
                        continue
                    state["step"] += 1
                    step = state["step"]
                    if step % cfg.log_every == 0 or step == total:
                        record = {"step": step, "loss": round(loss_sum / loss_n, 5),
                                  "lr": scheduler.get_last_lr()[0], "elapsed": round(elapsed(), 2),
                                  **meter.rates()}
                        loss_sum, loss_n = 0.0, 0
                        log(record)
                        progress.update(step, record)
                    else:
                        progress.update(step)
                    if objective.evaluate and cfg.eval_every and step % cfg.eval_every == 0:
                        stop = run_eval()
                        if not cfg.save_every:
                            save()
                    if cfg.save_every and step % cfg.save_every == 0:
                        save()
                    if stop or step >= total:
                        break
                    if stops.agreed(accelerator):
                        stopped()
                else:
                    state["epoch"], state["batch"] = state["epoch"] + 1, 0
                    if objective.evaluate and not cfg.eval_every:
                        stop = run_eval()
                        if not cfg.save_every:
                            save()
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted in step {state['step'] + 1}; the run continues from its last checkpoint "
                              "with --resume") from None

        last_eval = state["history"][-1]["step"] if state["history"] else None
        if objective.evaluate and last_eval != state["step"]:
            stop = run_eval() or stop
    accelerator.wait_for_everyone()
    if best_path.exists():
        checkpoint.load_trainable(accelerator.unwrap_model(model), best_path)
    return FitResult(steps=state["step"], seconds=round(elapsed(), 2),
                     eval_seconds=round(state.get("eval_seconds", 0.0), 2),
                     best=_best_record(state["history"], state["best"], objective.metric),
                     history=state["history"], stopped_early=stop)


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
