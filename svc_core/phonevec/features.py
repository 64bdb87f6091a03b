"""Log-mel front end of phonevec (torch, so the encoder needs nothing else at run time).

80 mel bands (Slaney, 0-8000 Hz) of a 512-point STFT with a 400-sample (25 ms) Hann window and a 160-sample
(10 ms) hop at 16 kHz, centred (reflect padding): N samples -> floor(N / 160) + 1 frames at 100 frames/s.
The model's convolutional front end halves that to 50 frames/s (hop 320, the content-encoder rate).
Values: natural log of mel power, floored at 1e-5.

Vocal tract length perturbation (VTLP) for training: `LogMel(wav, warp=alpha)` reads the power spectrum at
f / alpha before the mel filterbank (alpha > 1 moves formants and harmonics up, like a shorter vocal tract).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MelSettings:
    """STFT/mel parameters (stored in every phonevec checkpoint's config)."""

    sample_rate: int = 16000  # Hz
    n_fft: int = 512
    win_length: int = 400  # samples (25 ms)
    hop_length: int = 160  # samples (10 ms, 100 frames/s)
    n_mels: int = 80
    f_min: float = 0.0  # Hz
    f_max: float = 8000.0  # Hz
    log_floor: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)


def mel_basis(settings: MelSettings, warp: float = 1.0) -> np.ndarray:
    """Slaney mel filterbank [n_mels, n_fft/2+1]; with warp != 1 each filter is read at bin frequency f / warp."""
    import librosa

    basis = librosa.filters.mel(sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=settings.n_mels,
                                fmin=settings.f_min, fmax=settings.f_max, htk=False, norm="slaney")
    if warp == 1.0:
        return basis.astype(np.float32)
    k = np.arange(basis.shape[1], dtype=np.float64)
    # the warped spectrum S'(f) = S(f / warp); mel energy of S' = sum_f B(f) S(f / warp) = sum_g B(g * warp) S(g) warp
    src = np.clip(k * warp, 0, basis.shape[1] - 1)
    warped = np.stack([np.interp(src, k, row) for row in basis]) * warp
    return warped.astype(np.float32)


class LogMel(torch.nn.Module):
    """float audio [B, N] at 16 kHz -> log-mel [B, n_mels, floor(N / hop) + 1]."""

    def __init__(self, settings: MelSettings = MelSettings()) -> None:
        super().__init__()
        self.settings = settings
        self.register_buffer("window", torch.hann_window(settings.win_length), persistent=False)
        self.register_buffer("basis", torch.from_numpy(mel_basis(settings)), persistent=False)
        self._warped: dict[float, torch.Tensor] = {}
        self.export_mode = False  # True: STFT as a strided convolution with a DFT basis (exportable to ONNX)

    def n_frames(self, n_samples: int) -> int:
        """Output frame count for n_samples of audio."""
        return n_samples // self.settings.hop_length + 1

    def _basis(self, warp: float) -> torch.Tensor:
        if warp == 1.0:
            return self.basis
        key = round(float(warp), 3)
        if key not in self._warped:
            self._warped[key] = torch.from_numpy(mel_basis(self.settings, key))
        return self._warped[key].to(self.basis.device)

    def dft_basis(self) -> torch.Tensor:
        """[2 * (n_fft/2+1), 1, n_fft]: windowed cosine rows then windowed (negative) sine rows, so that a
        stride-hop convolution gives the real and imaginary parts of torch.stft (window centred in n_fft)."""
        s = self.settings
        left = (s.n_fft - s.win_length) // 2
        window = torch.zeros(s.n_fft, dtype=torch.float64)
        window[left:left + s.win_length] = self.window.double()
        n = torch.arange(s.n_fft, dtype=torch.float64)
        k = torch.arange(s.n_fft // 2 + 1, dtype=torch.float64)[:, None]
        angle = 2 * torch.pi * k * n / s.n_fft
        return torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window]).float()[:, None, :]

    def power(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, N] -> |STFT|^2 [B, n_fft/2+1, N // hop + 1] (centred, reflect padding)."""
        s = self.settings
        if not self.export_mode:
            spec = torch.stft(wav, n_fft=s.n_fft, hop_length=s.hop_length, win_length=s.win_length,
                              window=self.window, center=True, pad_mode="reflect", return_complex=True)
            return spec.real**2 + spec.imag**2
        padded = torch.nn.functional.pad(wav.unsqueeze(1), (s.n_fft // 2, s.n_fft // 2), mode="reflect")
        parts = torch.nn.functional.conv1d(padded, self.dft_basis().to(wav.device), stride=s.hop_length)
        real, imag = parts.chunk(2, dim=1)
        return real**2 + imag**2

    def forward(self, wav: torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        s = self.settings
        power = self.power(wav)  # [B, n_fft/2+1, frames]
        mel = torch.matmul(self._basis(warp), power)
        return torch.log(torch.clamp(mel, min=s.log_floor))
