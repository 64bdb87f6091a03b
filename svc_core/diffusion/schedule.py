"""The diffusion noise schedule of so-vits-svc 4.1 / Diff-SVC: linear betas and the quantities derived from them.

Everything is computed in float64 (numpy) and cast to float32 at the end, as upstream registers its buffers; the
names are the buffer names of upstream's `GaussianDiffusion` state dict (`decoder.<name>`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BETA_START = 1e-4  # beta_1 of the linear schedule
BETA_END = 0.02  # beta_T
POSTERIOR_VARIANCE_FLOOR = 1e-20  # log(max(var, floor)): the t = 0 variance is exactly 0

BUFFER_NAMES = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                "posterior_mean_coef1", "posterior_mean_coef2")


def linear_betas(timesteps: int) -> np.ndarray:
    """betas [timesteps] float64, linear from BETA_START to BETA_END."""
    return np.linspace(BETA_START, BETA_END, timesteps)


def schedule_arrays(timesteps: int) -> dict[str, np.ndarray]:
    """Every schedule buffer [timesteps] as float64, keyed by upstream's buffer name."""
    betas = linear_betas(timesteps)
    alphas = 1.0 - betas
    cumprod = np.cumprod(alphas, axis=0)
    cumprod_prev = np.append(1.0, cumprod[:-1])
    posterior_variance = betas * (1.0 - cumprod_prev) / (1.0 - cumprod)
    return {
        "betas": betas,
        "alphas_cumprod": cumprod,
        "alphas_cumprod_prev": cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - cumprod),
        "log_one_minus_alphas_cumprod": np.log(1.0 - cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / cumprod - 1),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, POSTERIOR_VARIANCE_FLOOR)),
        "posterior_mean_coef1": betas * np.sqrt(cumprod_prev) / (1.0 - cumprod),
        "posterior_mean_coef2": (1.0 - cumprod_prev) * np.sqrt(alphas) / (1.0 - cumprod),
    }


@dataclass(frozen=True)
class Schedule:
    """The float32 schedule tensors [timesteps] a sampler reads (the same values as the state-dict buffers)."""

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    log_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor

    @property
    def timesteps(self) -> int:
        return int(self.betas.shape[0])

    @classmethod
    def linear(cls, timesteps: int, device: str | torch.device = "cpu") -> "Schedule":
        """The schedule upstream builds for `timesteps` steps (float32 tensors on `device`)."""
        arrays = schedule_arrays(timesteps)
        return cls(**{name: torch.tensor(arrays[name], dtype=torch.float32, device=device) for name in BUFFER_NAMES})

    @classmethod
    def from_module(cls, module: torch.nn.Module) -> "Schedule":
        """The schedule held as buffers by `module` (e.g. a loaded GaussianDiffusion: the file's own values)."""
        return cls(**{name: getattr(module, name) for name in BUFFER_NAMES})
