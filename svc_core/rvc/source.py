"""RVC's NSF excitation (SineGen + SourceModuleHnNSF of commit d60cd3d, harmonic_num 0), drawing through NoiseSource.

Phase: per frame, rad = f0/sr * (1..hop) [B, T, hop]; the wrapped end-of-frame phase of frames 0..T-2 is accumulated
(cumsum, mod 1) and added to frames 1..T-1; sine = 0.1*sin(2*pi*rad). Older RVC builds accumulated the upsampled
phase instead (different numbers). Draws, in order: rand [1, 1, 1] (initial phase of the single harmonic, zeroed
by RVC, so consumed and unused), randn [B, T*hop, 1] (additive noise: std 0.003 voiced, 0.1/3 unvoiced).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..noise import NoiseSource

SINE_AMP = 0.1  # amplitude of the sine
NOISE_STD = 0.003  # additive noise std in voiced samples (unvoiced: SINE_AMP / 3)
VOICED_THRESHOLD = 0.0  # Hz; a frame is voiced when f0 > this
HARMONIC_NUM = 0  # RVC's GeneratorNSF uses the fundamental only


class RvcSineGen(nn.Module):
    """f0 [B, T] Hz per frame -> excitation [B, T*hop, 1] (sine*uv + noise)."""

    def __init__(self, sampling_rate: int) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate

    def phase(self, f0: torch.Tensor, upp: int) -> torch.Tensor:
        """f0 [B, T] Hz -> running phase in cycles [B, T*upp, 1] (this commit's accumulation)."""
        f0 = f0.unsqueeze(-1)
        steps = torch.arange(1, upp + 1, dtype=f0.dtype, device=f0.device)
        rad = f0 / self.sampling_rate * steps  # [B, T, upp]
        end = torch.fmod(rad[:, :-1, -1:].float() + 0.5, 1.0) - 0.5  # wrapped phase at each frame's end
        acc = end.cumsum(dim=1).fmod(1.0).to(f0)
        rad = rad + F.pad(acc, (0, 0, 1, 0), mode="constant")
        return rad.reshape(f0.shape[0], -1, 1)

    @torch.no_grad()
    def forward(self, f0: torch.Tensor, upp: int, noise: NoiseSource) -> torch.Tensor:
        rad = self.phase(f0, upp)
        initial = noise.rand((1, 1, HARMONIC_NUM + 1), device=f0.device)  # drawn as RVC does
        initial[..., 0] = 0
        rad = rad + initial
        sine = torch.sin(2 * math.pi * rad) * SINE_AMP
        uv = (f0 > VOICED_THRESHOLD).to(f0.dtype).repeat_interleave(upp, dim=1).unsqueeze(-1)  # [B, T*upp, 1]
        amp = uv * NOISE_STD + (1 - uv) * SINE_AMP / 3
        draw = noise.randn(tuple(sine.shape), device=f0.device)
        return sine * uv + amp * draw


class RvcSourceNSF(nn.Module):
    """`dec.m_source`: f0 [B, T] Hz -> harmonic source tanh(Linear(excitation)) [B, T*hop, 1]."""

    def __init__(self, sampling_rate: int) -> None:
        super().__init__()
        self.l_sin_gen = RvcSineGen(sampling_rate)
        self.l_linear = nn.Linear(HARMONIC_NUM + 1, 1)
        self.l_tanh = nn.Tanh()

    def forward(self, f0: torch.Tensor, upp: int, noise: NoiseSource) -> torch.Tensor:
        excitation = self.l_sin_gen(f0, upp, noise).to(dtype=self.l_linear.weight.dtype)
        return self.l_tanh(self.l_linear(excitation))
