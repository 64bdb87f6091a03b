"""The continuous-time schedule DPM-Solver and UniPC integrate over (svc_core/diffusion/samplers/vp.py)."""
from __future__ import annotations

import numpy as np
import torch

from svc_core.diffusion.samplers.vp import LOG_SNR_CLIP, clip_log_snr, interpolate, step_grid
from svc_core.diffusion.schedule import Schedule, linear_betas


def test_interpolate_matches_numpy_inside_and_extrapolates_linearly():
    xp = torch.tensor([0.1, 0.2, 0.4, 0.8])
    yp = torch.tensor([1.0, -1.0, 3.0, 5.0])
    x = torch.tensor([0.1, 0.15, 0.2, 0.3, 0.8, 0.0, 1.0])
    got = interpolate(x, xp, yp)
    assert np.allclose(got[:5].numpy(), np.interp(x[:5].numpy(), xp.numpy(), yp.numpy()), atol=1e-6)
    assert np.allclose(got[5:].numpy(), [3.0, 6.0], atol=1e-5)  # end segments extended


def test_log_snr_clip_keeps_the_linear_schedule_and_cuts_a_long_one():
    betas = torch.tensor(linear_betas(1000), dtype=torch.float32)
    log_alphas = 0.5 * torch.log(1 - betas).cumsum(0)
    assert clip_log_snr(log_alphas).shape[0] == 1000  # the samplers' usual case: nothing dropped
    long = 0.5 * torch.log(1 - torch.tensor(linear_betas(3000), dtype=torch.float32) * 2).cumsum(0)
    lam = long - 0.5 * torch.log(1 - torch.exp(2 * long))
    kept = clip_log_snr(long)
    assert 0 < kept.shape[0] < 3000 and int((lam >= LOG_SNR_CLIP).sum()) == kept.shape[0]


def test_grid_times_and_consistency():
    schedule = Schedule.linear(1000)
    grid = step_grid(schedule.betas[:100], 10, clip=True)
    assert grid.steps == 10
    assert np.allclose(grid.model_t.numpy(), np.linspace(99, 9.9, 10).tolist() + [0.0], atol=1e-4)
    # at the trained steps log(alpha_t)^2 = alpha_bar: grid point 0 is step 99, the last is step 0
    ac = schedule.alphas_cumprod
    assert torch.allclose(grid.alpha[[0, -1]] ** 2, ac[[99, 0]], rtol=1e-5)
    assert torch.allclose(grid.alpha ** 2 + grid.sigma ** 2, torch.ones(11), atol=1e-6)
    assert bool((grid.lam[1:] > grid.lam[:-1]).all())  # log-SNR rises towards the data
