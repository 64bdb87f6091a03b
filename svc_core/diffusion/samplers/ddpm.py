"""Plain ancestral DDPM sampling (Ho et al. 2020), every step, as so-vits-svc 4.1 runs it when speedup <= 1.

Upstream `p_sample` for t = k-1 ... 0: x0 = sqrt(1/a) x - sqrt(1/a - 1) eps, clamped to [-1, 1], posterior mean,
plus exp(0.5 * posterior_log_variance_clipped) * noise. A noise tensor is drawn at EVERY step, also at t = 0 where
it is multiplied by 0, so k steps draw k tensors (after the caller's start draw). Denoiser calls: k, int64 [B].
"""
from __future__ import annotations

import torch

from ...noise import NoiseSource
from ..schedule import Schedule
from .common import EpsFn, step_tensor

X0_CLAMP = 1.0  # the predicted normalised mel is clamped to [-1, 1] every step


def sample_ddpm(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t_start: int, speedup: int,
                noise: NoiseSource) -> torch.Tensor:
    """x [B, 1, M, T] at step t_start -> x0 [B, 1, M, T] (normalised mel); `speedup` is ignored (every step)."""
    cpu = {name: getattr(schedule, name).detach().to("cpu", torch.float32)
           for name in ("sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_mean_coef1",
                        "posterior_mean_coef2", "posterior_log_variance_clipped")}
    noise_std = torch.exp(0.5 * cpu["posterior_log_variance_clipped"][:t_start]).tolist()
    recip, recipm1 = cpu["sqrt_recip_alphas_cumprod"].tolist(), cpu["sqrt_recipm1_alphas_cumprod"].tolist()
    coef1, coef2 = cpu["posterior_mean_coef1"].tolist(), cpu["posterior_mean_coef2"].tolist()
    for t in reversed(range(t_start)):
        eps = eps_fn(x, step_tensor(t, x.shape[0], x.device))
        x0 = (x * recip[t]).sub_(eps * recipm1[t]).clamp_(-X0_CLAMP, X0_CLAMP)
        mean = x0.mul_(coef1[t]).add_(x * coef2[t])
        draw = noise.randn(x.shape, x.device)
        x = mean.add_(draw * noise_std[t]) if t > 0 else mean
    return x
