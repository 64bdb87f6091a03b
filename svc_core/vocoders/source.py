"""The harmonic-plus-noise excitation of the openvpi NSF-HiFiGAN (upstream `vdecoder/nsf_hifigan/models.py`
SourceModuleHnNSF / SineGen), computed in blocks so a long input never holds its [B, N, 9] sines at once.

Upstream (f0 [B, T] Hz at frame rate, upp = samples per frame):
* rad = (f0 * k / sample_rate) % 1 for harmonics k = 1..9 (float32, frame rate); a uniform draw rand(B, 9) with
  column 0 zeroed is added to frame 0 (the fundamental starts at phase 0);
* the per-sample phase increment is rad repeated upp times; the phase is its running sum in float64, less whole
  cycles where a linearly interpolated frame-rate phase wraps (sin does not see whole cycles: they only keep the
  sum small), sines = 0.1 * sin(2 pi phase);
* uv = f0 > 0 per frame; noise = (0.003 if voiced else 0.1 / 3) * randn_like(sines) [B, T*upp, 9];
* excitation = tanh(Linear(9, 1)(sines * uv + noise)) [B, T*upp, 1].

Here the phase at sample j (0-based) of frame f is start_f + (j + 1) * rad_f, with start_f = sum of upp * rad over
the earlier frames (float64, whole cycles dropped): any frame range can be computed on its own, equal to upstream's
running sum up to float64 rounding. The noise is drawn in upstream's order from frame 0: one [B, T*upp, 9] draw,
or (block_frames > 0) per batch row one [1, block*upp, 9] draw per block over all T frames, skipping the work
outside the requested range. torch fills normal tensors 16 values at a time, so for TorchNoise both give the same
numbers (block*upp*9 is a multiple of 16) and leave the RNG where upstream leaves it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..noise import NoiseSource

HARMONIC_NUM = 8  # overtones above the fundamental (9 sines)
SINE_AMP = 0.1  # amplitude of each sine
NOISE_STD = 0.003  # noise std in voiced samples (unvoiced: SINE_AMP / 3)
VOICED_THRESHOLD = 0.0  # Hz; a frame is voiced when f0 > this
WORK_BLOCK_FRAMES = 256  # frames of sines computed at once after a single noise draw (float64 [B, 256*upp, 9])


def _blocks(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) cut into consecutive ranges of at most `size`."""
    return [(a, min(stop, a + size)) for a in range(start, stop, size)]


class HarmonicSource(nn.Module):
    """f0 [B, T] Hz -> excitation [B, 1, (stop - start) * upp] for frames [start, stop). Upstream name: m_source
    (its only weights: `l_linear`)."""

    def __init__(self, sample_rate: int, upp: int, harmonic_num: int = HARMONIC_NUM) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.upp = upp
        self.dim = harmonic_num + 1
        self.l_linear = nn.Linear(self.dim, 1)

    def _frame_phases(self, f0: torch.Tensor, noise: NoiseSource) -> tuple[torch.Tensor, torch.Tensor]:
        """rad [B, T, dim] float32 (cycles per sample, initial phases added to frame 0) and the phase before each
        frame's first sample, start [B, T, dim] float64 in [0, 1) cycles. Draws rand(B, dim)."""
        harmonics = torch.arange(1, self.dim + 1, device=f0.device).reshape(1, 1, -1)
        rad = (f0[..., None] * harmonics / self.sample_rate) % 1
        initial = noise.rand((f0.shape[0], self.dim), f0.device).clone()
        initial[:, 0] = 0
        rad[:, 0, :] = rad[:, 0, :] + initial
        per_frame = (rad.double() * self.upp) % 1
        start = torch.zeros_like(per_frame)
        start[:, 1:] = torch.cumsum(per_frame[:, :-1], dim=1) % 1
        return rad, start

    def _block(self, rad: torch.Tensor, start: torch.Tensor, voiced: torch.Tensor,
               draw: torch.Tensor) -> torch.Tensor:
        """Frames of one block (rad/start [b, n, dim], voiced [b, n]) + noise draw [b, n*upp, dim] ->
        excitation [b, n*upp, 1]."""
        b, n, dim = rad.shape
        steps = torch.arange(1, self.upp + 1, dtype=torch.float64, device=rad.device).reshape(1, 1, -1, 1)
        phase = start[:, :, None, :] + steps * rad.double()[:, :, None, :]  # [b, n, upp, dim]
        sines = torch.sin(phase * (2 * math.pi)).float().reshape(b, n * self.upp, dim) * SINE_AMP
        uv = voiced.float().repeat_interleave(self.upp, dim=1)[..., None]  # [b, n*upp, 1]
        amp = uv * NOISE_STD + (1 - uv) * SINE_AMP / 3
        return torch.tanh(self.l_linear(sines * uv + amp * draw))

    @torch.no_grad()
    def forward(self, f0: torch.Tensor, noise: NoiseSource, start: int = 0, stop: int | None = None,
                block_frames: int = 0) -> torch.Tensor:
        """f0 [B, T] Hz -> excitation [B, 1, (stop - start) * upp] float32 for frames [start, stop).

        block_frames <= 0: one noise draw [B, T*upp, dim] (upstream's); else draws of [1, block*upp, dim]."""
        f0 = f0.float()
        batch, frames = f0.shape
        stop = frames if stop is None else stop
        rad, phase0 = self._frame_phases(f0, noise)
        voiced = f0 > VOICED_THRESHOLD
        if block_frames <= 0:
            draw = noise.randn((batch, frames * self.upp, self.dim), f0.device)
            parts = [self._block(rad[:, a:b], phase0[:, a:b], voiced[:, a:b], draw[:, a * self.upp:b * self.upp])
                     for a, b in _blocks(start, stop, WORK_BLOCK_FRAMES)]
            return torch.cat(parts, dim=1).transpose(1, 2)
        rows = []
        for row in range(batch):
            parts = []
            for lo in range(0, frames, block_frames):
                hi = min(frames, lo + block_frames)
                draw = noise.randn((1, (hi - lo) * self.upp, self.dim), f0.device)
                a, b = max(lo, start), min(hi, stop)
                if a >= b:
                    continue
                cut = draw[:, (a - lo) * self.upp:(b - lo) * self.upp]
                parts.append(self._block(rad[row:row + 1, a:b], phase0[row:row + 1, a:b],
                                         voiced[row:row + 1, a:b], cut))
            rows.append(torch.cat(parts, dim=1))
        return torch.cat(rows, dim=0).transpose(1, 2)
