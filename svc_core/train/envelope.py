"""Pitch-free input for the posterior encoder: the spectral envelope of each frame, harmonics removed.

With `posterior_input = "envelope"` the trainer feeds enc_q this envelope instead of the linear spectrogram
(the mel loss still compares against the real spectrogram). The latent z then carries the spectral envelope
and no pitch, so the NSF-HiFiGAN decoder can only place harmonics through its f0-driven source: the model
learns to follow the f0 it is given, which from-scratch training on the raw spectrogram does only after a
very long time (z carries the pitch of the training audio and the decoder copies it). Checkpoints keep the
upstream layout; inference never runs enc_q.

The envelope is pitch-adaptive cepstral smoothing: per frame, the real cepstrum of the log magnitude is cut
above quefrency LIFTER_RATIO * sr / f0 (below the first pitch peak at sr / f0), then turned back into a
magnitude.
"""
from __future__ import annotations

import torch

POSTERIOR_INPUTS = ("spectrum", "envelope")
LIFTER_RATIO = 0.6  # lifter cut as a fraction of the pitch period (in samples); < 1 keeps the pitch peak out
MIN_LIFTER = 8  # quefrency samples always kept (the coarse envelope even for very high f0)
LOG_FLOOR = 1e-5  # magnitude floor before the log


def spectral_envelope(spec: torch.Tensor, f0: torch.Tensor, sampling_rate: int, default_f0: float = 200.0
                      ) -> torch.Tensor:
    """spec [B, F, T] linear magnitude (F = n_fft / 2 + 1), f0 [B, T] Hz (interpolated; <= 0 -> default_f0)
    -> envelope [B, F, T] linear magnitude without harmonic structure."""
    n_fft = 2 * (spec.shape[1] - 1)
    log_mag = torch.log(torch.clamp(spec.float(), min=LOG_FLOOR)).transpose(1, 2)  # [B, T, F]
    cep = torch.fft.irfft(log_mag, n=n_fft, dim=-1)  # [B, T, n_fft], real and symmetric
    f0 = torch.where(f0 > 0, f0, torch.full_like(f0, default_f0)).float()
    cut = torch.clamp(LIFTER_RATIO * sampling_rate / f0, min=MIN_LIFTER)  # [B, T] quefrency samples
    q = torch.arange(n_fft, device=spec.device, dtype=torch.float32)
    q = torch.minimum(q, n_fft - q)  # symmetric quefrency
    keep = (q[None, None, :] < cut[..., None]).to(cep.dtype)
    env = torch.fft.rfft(cep * keep, n=n_fft, dim=-1).real  # [B, T, F]
    return torch.exp(env).transpose(1, 2).to(spec.dtype)
