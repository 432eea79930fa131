"""Inference precision: bfloat16 where this CPU runs it clearly faster than float32, else float32.

CPUs with AVX512-BF16 or AMX run bf16 matmuls and convolutions 1.5-4x faster; elsewhere bf16 is
emulated and slower. Where Linux lists those instructions the choice is bf16; elsewhere it is timed once
per process. Inference only (the encoder's trunk, the heads' decoders, the weighted correlation's
similarity matrix and softmax); training and adaptation gradients stay float32. On the test set the
bf16 path scored within -0.005..+0.002 J of the float32 heads (docs/benchmarks.md).
Set NAPARI_HOTSPOT_FP32=1 to force float32 everywhere.
"""

from __future__ import annotations

import contextlib
import os
import time

import torch

_CHOSEN: list[torch.dtype] = []


def _cpu_flags_say_fast_bf16() -> bool:
    """Whether Linux lists native bf16 instructions for this CPU (AVX512-BF16, AMX)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read(1 << 16)
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def _measure() -> torch.dtype:
    if os.environ.get("NAPARI_HOTSPOT_FP32", "").lower() in ("1", "true", "yes"):
        return torch.float32
    if _cpu_flags_say_fast_bf16():
        # No timing: in a busy process (the GUI drawing, another job) a timing chose float32 now and
        # then on such a CPU, a 2-3x slower encoder for that whole process.
        return torch.bfloat16
    a, b = torch.randn(1024, 152), torch.randn(152, 1024)
    pairs = {dtype: (a.to(dtype), b.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = {dtype: float("inf") for dtype in pairs}
    for x, y in pairs.values():  # warm-up: the first bf16 matmul of a process builds its kernels
        for _ in range(3):
            x @ y
    # Interleaved rounds, best of each: on a fresh AMX machine a single cold timing once chose float32,
    # which made the encoder 3x slower for that whole process.
    for _ in range(3):
        for dtype, (x, y) in pairs.items():
            t0 = time.perf_counter()
            for _ in range(3):
                x @ y
            best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return torch.bfloat16 if best[torch.bfloat16] < 0.7 * best[torch.float32] else torch.float32


def inference_dtype() -> torch.dtype:
    """The dtype inference runs its heavy ops in (measured on first call, then fixed)."""
    if not _CHOSEN:
        _CHOSEN.append(_measure())
    return _CHOSEN[0]


def inference_autocast():
    """Autocast to the inference dtype for a no-gradient forward pass (a no-op in float32 and wherever
    gradients are on: training and adaptation stay float32). Callers convert the outputs to float32."""
    if inference_dtype() == torch.float32 or torch.is_grad_enabled():
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=inference_dtype())


@contextlib.contextmanager
def float32_only():
    """Run inference in float32 inside this block (training caches encoder features this way, so the
    cache and retrained weights do not depend on the CPU). Not thread-safe: for scripts."""
    saved = list(_CHOSEN)
    _CHOSEN[:] = [torch.float32]
    try:
        yield
    finally:
        _CHOSEN[:] = saved
