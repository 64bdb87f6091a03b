"""Arithmetic of a conversion and this machine's matrix-multiply peak: the floor no engine can beat in a precision.

`count_stage_flops(convert)` runs `convert()` under torch's FlopCounterMode (convolutions, matrix products and
attention: the multiply-adds that dominate, 2 FLOP each) and returns GFLOP per pipeline stage (the
`StageTimes.stage` and `StageTimes.part` names: a part's arithmetic is moved out of its stage, as its time is).
`gemm_peak(threads, dtype)` times large square matrix products with `threads` torch threads: the best GFLOP/s this
CPU reaches in that precision, the yardstick for every stage's efficiency.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

GEMM_SIZE = 2048  # square matrix side for the peak measurement
GEMM_REPEATS = 5  # best of this many products


def count_stage_flops(convert: Callable[[], object]) -> dict[str, float]:
    """Run `convert()` once under FlopCounterMode -> {stage name: GFLOP} (stages that did arithmetic only)."""
    from torch.utils.flop_counter import FlopCounterMode

    from svc_core import timing

    mode = FlopCounterMode(display=False)
    flops: dict[str, int] = defaultdict(int)
    original = timing.StageTimes.stage

    @contextmanager
    def counted(self: timing.StageTimes, name: str) -> Iterator[None]:
        before = mode.get_total_flops()
        with original(self, name):
            yield
        flops[name] += mode.get_total_flops() - before

    original_part = timing.StageTimes.part

    @contextmanager
    def counted_part(self: timing.StageTimes, name: str, of: str) -> Iterator[None]:
        before = mode.get_total_flops()
        with original_part(self, name, of):
            yield
        spent = mode.get_total_flops() - before
        flops[of] -= spent
        flops[name] += spent

    timing.StageTimes.stage, timing.StageTimes.part = counted, counted_part  # type: ignore[method-assign]
    try:
        with mode:
            convert()
    finally:
        timing.StageTimes.stage, timing.StageTimes.part = original, original_part  # type: ignore[method-assign]
    return {name: value / 1e9 for name, value in flops.items() if value}


def gemm_peak(threads: int, dtype: torch.dtype = torch.float32, size: int = GEMM_SIZE) -> float:
    """GFLOP/s of the best of GEMM_REPEATS [size x size] @ [size x size] products with `threads` torch threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=gen).to(dtype)
        b = torch.randn(size, size, generator=gen).to(dtype)
        torch.mm(a, b)  # warm-up: kernel selection, page faults
        best = float("inf")
        for _ in range(GEMM_REPEATS):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2.0 * size**3 / best / 1e9
