"""DPM-Solver and DPM-Solver++ (Lu et al. 2022), multistep, order 2, as so-vits-svc 4.1 runs them.

Upstream: `NoiseScheduleVP('discrete', betas=betas[:k])`, `DPM_Solver(..., algorithm_type='dpmsolver' |
'dpmsolver++')`, `sample(x, steps=k // speedup, order=2, skip_type='time_uniform', method='multistep')`: one
denoiser call per step (none at the final time), first step first-order, lower-order final step only when
steps < 10, no thresholding. `dpm-solver` extrapolates the predicted noise; `dpm-solver++` the predicted clean mel
x0 = (x - sigma_t * eps) / alpha_t.
"""
from __future__ import annotations

import torch

from ...noise import NoiseSource
from ..schedule import Schedule
from .common import EpsFn
from .vp import SOLVER_ORDER, ModelTimes, step_grid, step_orders

LOWER_ORDER_FINAL_BELOW = 10  # DPM-Solver uses a first-order last step only when it takes fewer steps than this


def sample_dpm_solver(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t_start: int, speedup: int,
                      noise: NoiseSource, *, data_prediction: bool = False) -> torch.Tensor:
    """Integrate the diffusion ODE from step t_start to 0. x [B, 1, M, T] -> x0 [B, 1, M, T] (normalised mel).

    `noise` is unused (the only draw is the start x, made by the caller). Denoiser calls: t_start // speedup.
    """
    steps = t_start // speedup
    grid = step_grid(schedule.betas[:t_start], steps, clip=True)
    order = min(SOLVER_ORDER, steps)
    orders = step_orders(steps, order, lower_order_final=steps < LOWER_ORDER_FINAL_BELOW)
    model_t = ModelTimes(grid, x.shape[0], x.device)
    alpha, sigma = grid.alpha.tolist(), grid.sigma.tolist()

    lam = grid.lam
    h = lam[1:] - lam[:-1]  # [steps]: step i -> i + 1 in half log-SNR
    if data_prediction:
        phi = torch.expm1(-h)
        x_coef = grid.sigma[1:] / grid.sigma[:-1]
        m_coef = grid.alpha[1:] * phi
    else:
        phi = torch.expm1(h)
        x_coef = torch.exp(grid.log_alpha[1:] - grid.log_alpha[:-1])
        m_coef = grid.sigma[1:] * phi
    d_coef = 0.5 * m_coef  # weight of the first difference D1 in the second-order update
    r_inv = torch.ones_like(h)
    r_inv[1:] = 1.0 / ((lam[1:-1] - lam[:-2]) / h[1:])  # 1 / r0, r0 = h_prev / h
    x_coef, m_coef, d_coef, r_inv = (v.tolist() for v in (x_coef, m_coef, d_coef, r_inv))

    def model(x: torch.Tensor, i: int) -> torch.Tensor:
        eps = eps_fn(x, model_t(i))
        if not data_prediction:
            return eps
        return (eps * sigma[i]).neg_().add_(x).div_(alpha[i])  # (x - sigma * eps) / alpha

    history = [model(x, 0)]  # model outputs at the last `order` grid points, oldest first
    for i in range(1, steps + 1):
        k = i - 1  # coefficient index of the step (i - 1) -> i
        m0 = history[-1]
        x_new = x * x_coef[k]
        x_new.sub_(m0 * m_coef[k])
        if orders[k] == 2:
            diff = (m0 - history[-2]).mul_(r_inv[k]).mul_(d_coef[k])
            x_new.sub_(diff)
        x = x_new
        if i < steps:
            history.append(model(x, i))
            del history[:-order]
    return x
