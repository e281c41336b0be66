"""Device, precision and threads: decided once per run from the config and the hardware."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from lmtune.config import Config, TrainConfig


@cache
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run several times faster than fp32 there (README, Speed). Without them
    bf16 is emulated and slower, so stay in fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(choice: str) -> str:
    """Accelerate's mixed_precision value for the config's choice ('auto' picks what pays here)."""
    if choice == "fp32":
        return "no"
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "no"


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    precision = resolve_precision(cfg.precision)
    # Accelerate's state is process-wide and refuses a new precision; a second run in the same process
    # (the Python API, a notebook, tests) may need another one, so that part of the state starts afresh.
    if AcceleratorState._shared_state.get("_mixed_precision", precision) != precision:
        AcceleratorState._reset_state()
    # Accelerate only turns torchrun's processes into a CPU process group (gloo) when told the run is on CPU.
    on_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum, cpu=on_cpu)


@contextmanager
def eval_mode(model: torch.nn.Module, precision: str = "auto") -> Iterator[torch.device]:
    """No gradients, dropout off, bf16 autocast where it pays; the model's train/eval state is restored."""
    device = next(model.parameters()).device
    bf16 = resolve_precision(precision) == "bf16"
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            yield device
    finally:
        model.train(was_training)


def hardware(cfg: Config) -> dict:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    return {"device": device, "threads": torch.get_num_threads(),
            "precision": resolve_precision(cfg.train.precision), "torch": torch.__version__}
