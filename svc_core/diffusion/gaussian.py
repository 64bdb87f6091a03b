"""GaussianDiffusion: the DDPM wrapper around the WaveNet denoiser (upstream `decoder`), with its schedule buffers,
mel normalisation, the shallow / only-diffusion start and the training loss.

Mels are [B, T, M] log-mels outside this module and [B, 1, M, T] normalised to about [-1, 1] inside it.
Every random draw goes through a NoiseSource (svc_core.noise), in upstream's order.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OptionError
from ..noise import NoiseSource, TorchNoise
from .schedule import BUFFER_NAMES, Schedule
from .wavenet import WaveNet

SPEC_MIN = -12.0  # log-mel value mapped to -1 (upstream default; stored as buffer decoder.spec_min [1, 1, 1])
SPEC_MAX = 2.0  # log-mel value mapped to +1


def _at(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """values[t] for steps t [b] (int64), shaped [b, 1, ..., 1] to broadcast over an ndim tensor."""
    return values.gather(-1, t).reshape(t.shape[0], *((1,) * (ndim - 1)))


class GaussianDiffusion(nn.Module):
    """Diffusion over normalised mels with `denoise_fn` predicting the noise.

    timesteps: length of the chain; k_step_max: the last step the model was trained on (0 or >= timesteps: the
    whole chain, which allows synthesis from pure noise).
    """

    def __init__(self, denoise_fn: WaveNet, out_dims: int = 128, timesteps: int = 1000, k_step_max: int = 0,
                 spec_min: float = SPEC_MIN, spec_max: float = SPEC_MAX) -> None:
        super().__init__()
        self.denoise_fn = denoise_fn
        self.out_dims = out_dims
        self.timesteps = int(timesteps)
        self.k_step_max = int(k_step_max) if 0 < k_step_max < timesteps else self.timesteps
        schedule = Schedule.linear(self.timesteps)
        for name in BUFFER_NAMES:
            self.register_buffer(name, getattr(schedule, name))
        self.register_buffer("spec_min", torch.tensor([[[float(spec_min)]]], dtype=torch.float32))
        self.register_buffer("spec_max", torch.tensor([[[float(spec_max)]]], dtype=torch.float32))

    @property
    def full_chain(self) -> bool:
        """True when only-diffusion (start from pure noise) is allowed."""
        return self.k_step_max == self.timesteps

    def schedule(self) -> Schedule:
        """The schedule tensors this module holds (the loaded file's own values)."""
        return Schedule.from_module(self)

    def norm_spec(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel -> [-1, 1] (not clamped)."""
        return (mel - self.spec_min) / (self.spec_max - self.spec_min) * 2 - 1

    def denorm_spec(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> log-mel (not clamped)."""
        return (x + 1) / 2 * (self.spec_max - self.spec_min) + self.spec_min

    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward-noise x_start [B, 1, M, T] to step t ([B] or [1] int64): sqrt(a_t) x0 + sqrt(1 - a_t) noise."""
        return (_at(self.sqrt_alphas_cumprod, t, x_start.dim()) * x_start
                + _at(self.sqrt_one_minus_alphas_cumprod, t, x_start.dim()) * noise)

    def _mel_to_x(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, T, M] -> normalised [B, 1, M, T]."""
        return self.norm_spec(mel).transpose(1, 2)[:, None, :, :]

    def check_k_step(self, k_step: int, shallow: bool) -> None:
        """OptionError for a k_step this model cannot run (upstream's guards, plus k_step >= 1)."""
        if not shallow:
            if not self.full_chain:
                raise OptionError(f"This diffusion model was trained on the first {self.k_step_max} of "
                                  f"{self.timesteps} steps only (model.k_step_max {self.k_step_max}), so it can only "
                                  "refine a so-vits-svc mel (shallow diffusion), not synthesise on its own; turn "
                                  "only-diffusion off.")
            return
        try:
            whole = not isinstance(k_step, bool) and int(k_step) == k_step
        except (TypeError, ValueError):
            whole = False
        if not whole or k_step < 1:
            raise OptionError(f"k_step must be a whole number of diffusion steps >= 1, got {k_step!r}.")
        if k_step > self.k_step_max:
            raise OptionError(f"k_step {k_step} is larger than this diffusion model's k_step_max "
                              f"({self.k_step_max}): it was not trained beyond that step; use k_step <= "
                              f"{self.k_step_max}.")

    def infer(self, cond: torch.Tensor, gt_spec: Optional[torch.Tensor], k_step: int, method: Optional[str],
              speedup: int, noise: Optional[NoiseSource] = None, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """Denoise to a log-mel [B, T, M].

        cond [B, T, H] (Unit2Mel condition). Shallow (gt_spec [B, T, M] given): the mel is forward-noised to step
        k_step - 1 and denoised from k_step. Only-diffusion (gt_spec None): start from pure noise at the chain's
        end (k_step is ignored, as upstream). method / speedup pick the sampler (svc_core.diffusion.samplers).
        dtype bfloat16 / float16: the denoiser runs under autocast in that precision (opt-in; WaveNet.cached).
        """
        noise = noise if noise is not None else TorchNoise()
        self.check_k_step(k_step, shallow=gt_spec is not None)
        cond_t = cond.transpose(1, 2)
        shape = (cond_t.shape[0], 1, self.out_dims, cond_t.shape[2])
        if gt_spec is None:
            t_start = self.k_step_max
            x = noise.randn(shape, cond.device)
        else:
            t_start = int(k_step)
            x_start = self._mel_to_x(gt_spec)
            step = torch.tensor([t_start - 1], device=cond.device, dtype=torch.long)
            x = self.q_sample(x_start, step, noise.randn(x_start.shape, cond.device))
        from .samplers import run_sampler  # imported here: the samplers package imports this one's siblings

        eps_fn = self.denoise_fn.cached(cond_t) if dtype is None else self.denoise_fn.cached(cond_t, dtype)
        x = run_sampler(method, eps_fn, self.schedule(), x, t_start, speedup, noise)
        return self.denorm_spec(x.squeeze(1).transpose(1, 2))

    def sample_steps(self, batch: int, device: torch.device | str = "cpu",
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Training steps t [batch] int64, uniform over [0, k_step_max) as upstream draws them."""
        return torch.randint(0, self.k_step_max, (batch,), generator=generator, device=device, dtype=torch.long)

    def loss(self, cond: torch.Tensor, gt_spec: torch.Tensor, t: Optional[torch.Tensor] = None,
             noise: torch.Tensor | NoiseSource | None = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Upstream's training loss (p_losses, l2): mean squared error between the noise added to the normalised
        mel and the denoiser's prediction of it. cond [B, T, H], gt_spec [B, T, M]; t [B] int64 (drawn with
        `sample_steps` when None); noise [B, 1, M, T] or a NoiseSource (TorchNoise(generator) when None).
        Draw order as upstream: t first, then the noise."""
        x_start = self._mel_to_x(gt_spec)
        if t is None:
            t = self.sample_steps(x_start.shape[0], x_start.device, generator)
        if not isinstance(noise, torch.Tensor):
            source = noise if noise is not None else TorchNoise(generator)
            noise = source.randn(x_start.shape, x_start.device)
        x_noisy = self.q_sample(x_start, t, noise)
        eps = self.denoise_fn(x_noisy, t, cond.transpose(1, 2))
        return F.mse_loss(noise, eps)
