"""UniPC (Zhao et al. 2023), variant bh2, data prediction, multistep order 2, as so-vits-svc 4.1 runs it.

Upstream: `NoiseScheduleVP('discrete', betas=betas[:k])` (no log-SNR clipping), `UniPC(..., variant='bh2')`,
`sample(x, steps=k // speedup, order=2, skip_type='time_uniform', method='multistep')`: each step predicts x_t
(UniP), calls the denoiser there, then corrects x_t with that output (UniC) and keeps the output for the next step;
the last step is first-order and uncorrected (no call). Denoiser calls: k // speedup.
"""
from __future__ import annotations

import torch

from ...noise import NoiseSource
from ..schedule import Schedule
from .common import EpsFn
from .vp import SOLVER_ORDER, ModelTimes, step_grid, step_orders

PREDICTOR_RHO = 0.5  # UniP-2's weight of the first difference (bh variants, order 2)
FIRST_ORDER_RHO = 0.5  # UniC-1's weight of the new difference


def _corrector_rhos(r: torch.Tensor, hh: torch.Tensor, order: int) -> torch.Tensor:
    """Solve the bh2 order conditions R rho = b for the corrector weights; r = rks [order], hh = -h ([1])."""
    b_h = torch.expm1(hh)
    h_phi_k = torch.expm1(hh) / hh - 1
    factorial = 1
    rows, rhs = [], []
    for i in range(1, order + 1):
        rows.append(torch.pow(r, i - 1))
        rhs.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return torch.linalg.solve(torch.stack(rows), torch.cat(rhs))


def sample_unipc(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t_start: int, speedup: int,
                 noise: NoiseSource) -> torch.Tensor:
    """Integrate from step t_start to 0 with UniPC-bh2. x [B, 1, M, T] -> x0 [B, 1, M, T] (normalised mel).

    `noise` is unused (the only draw is the start x, made by the caller).
    """
    steps = t_start // speedup
    grid = step_grid(schedule.betas[:t_start], steps, clip=False)
    order = min(SOLVER_ORDER, steps)
    orders = step_orders(steps, order, lower_order_final=True)
    model_t = ModelTimes(grid, x.shape[0], x.device)
    alpha, sigma, lam = grid.alpha, grid.sigma, grid.lam

    def model(x: torch.Tensor, i: int) -> torch.Tensor:  # predicted clean mel x0
        eps = eps_fn(x, model_t(i))
        return (eps * float(sigma[i])).neg_().add_(x).div_(float(alpha[i]))

    history = [model(x, 0)]  # data predictions at the last `order` grid points, oldest first
    for i in range(1, steps + 1):
        k, correct = i - 1, i < steps
        m0 = history[-1]
        h = lam[i:i + 1] - lam[k:k + 1]  # [1]
        ab = float(alpha[i:i + 1] * torch.expm1(-h))  # alpha_t * B(h), bh2: B(h) = e^{-h} - 1 (= h phi_1 here)
        x_base = x * float(sigma[i] / sigma[k])  # the first-order (DPM-Solver++ 1) update
        x_base.sub_(m0 * ab)
        d1, rho_new = None, FIRST_ORDER_RHO
        if orders[k] == 2:
            rk = (lam[k - 1:k] - lam[k:k + 1]) / h
            d1 = (history[-2] - m0).div_(float(rk))
            x_t = x_base - (d1 * PREDICTOR_RHO).mul_(ab)
            if correct:
                rho_d1, rho_new = _corrector_rhos(torch.tensor([float(rk), 1.0]), -h, 2).tolist()
        else:
            x_t = x_base
        if not correct:  # the last step: no call, no correction
            x = x_t
            break
        model_out = model(x_t, i)
        corr = (model_out - m0).mul_(rho_new)
        if d1 is not None:
            corr = (d1 * rho_d1).add_(corr)
        x = corr.mul_(ab).neg_().add_(x_base)  # x_base - ab * (rho_d1 * d1 + rho_new * (model_out - m0))
        history.append(model_out)
        del history[:-order]
    return x
