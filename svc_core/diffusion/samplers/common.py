"""What every sampler shares: the denoiser and sampler signatures, the discrete step lists and step tensors."""
from __future__ import annotations

from typing import Callable

import torch

from ...noise import NoiseSource
from ..schedule import Schedule

# eps_fn(x [B, 1, M, T], t [B] int64 or float32) -> predicted noise [B, 1, M, T]
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# sampler(eps_fn, schedule, x [B, 1, M, T] at step t_start, t_start, speedup, noise) -> x0 [B, 1, M, T]
SamplerFn = Callable[[EpsFn, Schedule, torch.Tensor, int, int, NoiseSource], torch.Tensor]


def strided_steps(t_start: int, speedup: int) -> list[int]:
    """The steps DDIM and PNDM visit: t_start - 1 rounded down to a multiple of speedup, ..., speedup, 0."""
    return list(reversed(range(0, t_start, speedup)))


def step_tensor(step: int, batch: int, device: torch.device) -> torch.Tensor:
    """The denoiser's discrete step input: int64 [B]."""
    return torch.full((batch,), step, dtype=torch.long, device=device)
