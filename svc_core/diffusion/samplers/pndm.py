"""PNDM's pseudo linear multistep method (PLMS; Liu et al. 2022), as so-vits-svc 4.1 runs it.

Upstream `p_sample_plms` over the DDIM step list (`reversed(range(0, k, speedup))`): the first step calls the
denoiser twice (at t, then at t - speedup on the DDIM-like prediction, averaging the two noises), later steps
combine the stored noises with the 2-, 3- and 4-term Adams-Bashforth weights. Denoiser calls: len(steps) + 1.
"""
from __future__ import annotations

import torch

from ...noise import NoiseSource
from ..schedule import Schedule
from .common import EpsFn, step_tensor, strided_steps

HISTORY = 3  # earlier noises the 4-term Adams-Bashforth combination uses


def transfer_coefficients(schedule: Schedule, steps: list[int], speedup: int) -> list[tuple[float, float, float]]:
    """Per step (a_prev - a_t, 1 / (s_t (s_t + s_prev)), 1 / (s_t (sqrt((1-a_prev) a_t) + sqrt((1-a_t) a_prev))))
    with a = alphas_cumprod at t and max(t - speedup, 0), s = sqrt(a); float32 as upstream."""
    ac = schedule.alphas_cumprod.detach().to("cpu", torch.float32)
    idx = torch.tensor(steps, dtype=torch.long)
    a_t, a_prev = ac[idx], ac[(idx - speedup).clamp(min=0)]
    s_t, s_prev = a_t.sqrt(), a_prev.sqrt()
    x_coef = 1 / (s_t * (s_t + s_prev))
    eps_coef = 1 / (s_t * (((1 - a_prev) * a_t).sqrt() + ((1 - a_t) * a_prev).sqrt()))
    return list(zip((a_prev - a_t).tolist(), x_coef.tolist(), eps_coef.tolist()))


def _transfer(x: torch.Tensor, eps: torch.Tensor, coef: tuple[float, float, float]) -> torch.Tensor:
    """x_prev = x + (a_prev - a_t) * (x_coef * x - eps_coef * eps)."""
    delta, x_coef, eps_coef = coef
    return (x * x_coef).sub_(eps * eps_coef).mul_(delta).add_(x)


def _plms_noise(eps: torch.Tensor, history: list[torch.Tensor]) -> torch.Tensor:
    """The Adams-Bashforth combination of the current noise and up to 3 earlier ones (newest last)."""
    if len(history) == 1:
        return (3 * eps - history[-1]) / 2
    if len(history) == 2:
        return (23 * eps - 16 * history[-1] + 5 * history[-2]) / 12
    return (55 * eps - 59 * history[-1] + 37 * history[-2] - 9 * history[-3]) / 24


def sample_pndm(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t_start: int, speedup: int,
                noise: NoiseSource) -> torch.Tensor:
    """x [B, 1, M, T] at step t_start -> x0 [B, 1, M, T] (normalised mel). `noise` is unused (deterministic)."""
    steps = strided_steps(t_start, speedup)
    batch, device = x.shape[0], x.device
    history: list[torch.Tensor] = []
    for step, coef in zip(steps, transfer_coefficients(schedule, steps, speedup)):
        eps = eps_fn(x, step_tensor(step, batch, device))
        if not history:
            x_pred = _transfer(x, eps, coef)
            eps_next = eps_fn(x_pred, step_tensor(max(step - speedup, 0), batch, device))
            eps_prime = (eps + eps_next) / 2
        else:
            eps_prime = _plms_noise(eps, history)
        x = _transfer(x, eps_prime, coef)
        history.append(eps)
        del history[:-HISTORY]
    return x
