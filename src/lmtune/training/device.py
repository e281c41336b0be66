"""Device, precision and threads: decided once per run from the config and the hardware."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from lmtune.config import TrainConfig


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
