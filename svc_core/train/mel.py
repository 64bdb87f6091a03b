"""Spectral front ends of training: the linear spectrogram of the dataset contract and the 80-bin log-mel of the
mel loss (upstream's spectrogram_torch / spec_to_mel_torch / mel_spectrogram_torch numerics).

Linear magnitude: reflect pad (n_fft - hop) / 2 each side, STFT with a Hann window of win_length, center False,
sqrt(re^2 + im^2 + 1e-6). Mel: librosa Slaney filterbank applied to that magnitude, then ln(max(x, 1e-5)).
"""
from __future__ import annotations

from dataclasses import dataclass

import librosa
import torch

from ..features import linear_spectrogram  # noqa: F401  (re-exported for the trainer and dataset)

LOG_CLIP = 1e-5  # floor before the natural log of the mel energies

_filters: dict[tuple, torch.Tensor] = {}


@dataclass(frozen=True)
class MelParams:
    """The config "data" fields the mel loss uses."""

    sampling_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int = 2048
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 22050.0

    @classmethod
    def from_config(cls, config) -> "MelParams":
        """From an SvcConfig (its raw data section supplies n_mel_channels, mel_fmin, mel_fmax)."""
        data = config.raw.get("data", {})
        fmax = data.get("mel_fmax", config.sampling_rate / 2)
        return cls(sampling_rate=config.sampling_rate, n_fft=config.filter_length, hop_length=config.hop_length,
                   win_length=config.win_length, n_mels=int(data.get("n_mel_channels", 80)),
                   fmin=float(data.get("mel_fmin", 0.0) or 0.0), fmax=None if fmax is None else float(fmax))


def _mel_basis(p: MelParams, like: torch.Tensor) -> torch.Tensor:
    key = (p, like.dtype, like.device)
    if key not in _filters:
        basis = librosa.filters.mel(sr=p.sampling_rate, n_fft=p.n_fft, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax)
        _filters[key] = torch.from_numpy(basis).to(dtype=like.dtype, device=like.device)
    return _filters[key]


def spec_to_mel(spec: torch.Tensor, params: MelParams) -> torch.Tensor:
    """Linear magnitude [..., F, T] -> log-mel [..., n_mels, T]."""
    mel = torch.matmul(_mel_basis(params, spec), spec.float())
    return torch.log(torch.clamp(mel, min=LOG_CLIP))


def mel_spectrogram(wav: torch.Tensor, params: MelParams) -> torch.Tensor:
    """wav [B, N] -> log-mel [B, n_mels, N // hop] (computed in float32)."""
    spec = linear_spectrogram(wav.float(), params.n_fft, params.hop_length, params.win_length)
    return spec_to_mel(spec, params)
