"""DDIM (Song et al. 2021), deterministic, every `speedup`-th step, as so-vits-svc 4.1 runs it.

Upstream `p_sample_ddim` over `reversed(range(0, k, speedup))`: the first step is at the largest multiple of
speedup below k (k = 100, speedup 10 -> 90, 80, ..., 0) although the start x was noised at k - 1. Denoiser calls:
len(range(0, k, speedup)), steps as int64 [B].
"""
from __future__ import annotations

import torch

from ...noise import NoiseSource
from ..schedule import Schedule
from .common import EpsFn, step_tensor, strided_steps


def ddim_coefficients(schedule: Schedule, steps: list[int], speedup: int) -> list[tuple[float, float, float]]:
    """Per step (sqrt(a_prev), sqrt(a_t), sqrt((1-a_prev)/a_prev) - sqrt((1-a_t)/a_t)), float32 as upstream;
    a = alphas_cumprod, a_prev taken at max(t - speedup, 0)."""
    ac = schedule.alphas_cumprod.detach().to("cpu", torch.float32)
    idx = torch.tensor(steps, dtype=torch.long)
    a_t, a_prev = ac[idx], ac[(idx - speedup).clamp(min=0)]
    eps_coef = ((1 - a_prev) / a_prev).sqrt() - ((1 - a_t) / a_t).sqrt()
    return list(zip(a_prev.sqrt().tolist(), a_t.sqrt().tolist(), eps_coef.tolist()))


def sample_ddim(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t_start: int, speedup: int,
                noise: NoiseSource) -> torch.Tensor:
    """x [B, 1, M, T] at step t_start -> x0 [B, 1, M, T] (normalised mel). `noise` is unused (DDIM is
    deterministic; the only draw is the start x, made by the caller)."""
    steps = strided_steps(t_start, speedup)
    for step, (sqrt_a_prev, sqrt_a_t, eps_coef) in zip(steps, ddim_coefficients(schedule, steps, speedup)):
        eps = eps_fn(x, step_tensor(step, x.shape[0], x.device))
        # x_prev = sqrt(a_prev) * (x / sqrt(a_t) + eps_coef * eps)
        x = (eps * eps_coef).add_(x / sqrt_a_t).mul_(sqrt_a_prev)
    return x
