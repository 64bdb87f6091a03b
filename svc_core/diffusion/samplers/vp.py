"""The continuous-time view of a discrete VP schedule that DPM-Solver and UniPC integrate over (float32).

Upstream (`diffusion/dpm_solver_pytorch.py`, `diffusion/uni_pc.py`, schedule 'discrete') maps the N trained steps
n = 0..N-1 to times t_n = (n + 1) / N, interpolates log(alpha_t) = 0.5 * log(alpha_bar) piecewise linearly between
them, and solves from t = 1 down to t = 1/N on a uniform time grid ('time_uniform'). All in float32, as upstream.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

SOLVER_ORDER = 2  # upstream runs DPM-Solver(++) and UniPC as 2nd-order multistep solvers
LOG_SNR_CLIP = -5.1  # DPM-Solver drops the schedule's tail where the half log-SNR falls below this (UniPC does not)


@dataclass(frozen=True)
class StepGrid:
    """The solver's time points i = 0..steps (t from 1 down to 1/N), each a float32 tensor [steps + 1]."""

    t: torch.Tensor  # continuous time
    model_t: torch.Tensor  # the denoiser's step input (t - 1/N) * N: 99, 89.1, ..., 0 for N = 100, 10 steps
    log_alpha: torch.Tensor  # log(alpha_t), alpha_t = sqrt(alpha_bar)
    alpha: torch.Tensor
    sigma: torch.Tensor  # sqrt(1 - alpha_t^2)
    lam: torch.Tensor  # half log-SNR log(alpha_t) - log(sigma_t)

    @property
    def steps(self) -> int:
        return int(self.t.shape[0]) - 1


def interpolate(x: torch.Tensor, xp: torch.Tensor, yp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear y(x) through (xp, yp) [K] (xp increasing), extrapolating with the end segments; x [n]."""
    k = xp.shape[0]
    j = (torch.searchsorted(xp, x) - 1).clamp(0, k - 2)
    x0, x1, y0, y1 = xp[j], xp[j + 1], yp[j], yp[j + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


def clip_log_snr(log_alphas: torch.Tensor, floor: float = LOG_SNR_CLIP) -> torch.Tensor:
    """Drop the last steps whose half log-SNR is below `floor` (never the case for the linear 1e-4..0.02 betas)."""
    log_sigmas = 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alphas))
    lams = log_alphas - log_sigmas
    drop = int(torch.searchsorted(torch.flip(lams, [0]), torch.tensor(floor, dtype=lams.dtype)))
    return log_alphas[:-drop] if drop > 0 else log_alphas


def step_grid(betas: torch.Tensor, steps: int, clip: bool) -> StepGrid:
    """The time grid for `steps` solver steps over the first N = len(betas) steps of the chain ([N] float32)."""
    betas = betas.detach().to("cpu", torch.float32)
    log_alphas = 0.5 * torch.log(1 - betas).cumsum(dim=0)
    if clip:
        log_alphas = clip_log_snr(log_alphas)
    n = int(log_alphas.shape[0])
    t_array = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float32)[1:]
    t = torch.linspace(1.0, 1.0 / n, steps + 1, dtype=torch.float32)
    log_alpha = interpolate(t, t_array, log_alphas)
    one_minus = 1.0 - torch.exp(2.0 * log_alpha)
    return StepGrid(
        t=t,
        model_t=(t - 1.0 / n) * n,
        log_alpha=log_alpha,
        alpha=torch.exp(log_alpha),
        sigma=torch.sqrt(one_minus),
        lam=log_alpha - 0.5 * torch.log(one_minus),
    )


def solver_steps(t_start: int, speedup: int) -> int:
    """Steps DPM-Solver / UniPC take from t_start with `speedup` (upstream: t // speedup, one denoiser call each)."""
    return t_start // speedup


def step_orders(steps: int, order: int, lower_order_final: bool) -> list[int]:
    """The order of the update into grid point i = 1..steps (multistep warm-up, optional lower-order ending)."""
    orders = []
    for i in range(1, steps + 1):
        o = min(order, i)
        if lower_order_final:
            o = min(o, steps + 1 - i)
        orders.append(o)
    return orders


class ModelTimes:
    """Hands out the denoiser's step input for grid point i as a float32 [B] tensor on the sampler's device."""

    def __init__(self, grid: StepGrid, batch: int, device: torch.device) -> None:
        self._t = grid.model_t.to(device)
        self._batch = batch

    def __call__(self, i: int) -> torch.Tensor:
        return self._t[i].expand(self._batch)
