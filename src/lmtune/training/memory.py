"""Hand freed memory back to the system: after each optimiser step (switch: train.release_memory) and after each
batch of generated answers.

Training with length-grouped batches allocates tensors of a new shape at nearly every step. glibc's malloc keeps
freed blocks for reuse and returns memory to the system only from the top of its heaps, so the process keeps
growing although the same tensors are alive at every step (measured in the README, "Memory"). `malloc_trim`
after each optimiser step returns the free pages wherever they lie; trimming on every free instead
(MALLOC_TRIM_THRESHOLD_=0) bounds memory as well but slowed training (README, "Memory"). Other C libraries are
left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def releaser() -> Callable[[], None] | None:
    """A function that returns freed heap pages to the system, or None where the C library has none (musl,
    macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "malloc_trim"):
        return None
    return lambda: libc.malloc_trim(0)
