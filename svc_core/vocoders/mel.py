"""The openvpi NSF-HiFiGAN log-mel (upstream `vdecoder/nsf_hifigan/nvSTFT.py` STFT.get_mel), re-implemented.

audio [B, N] float32 in [-1, 1] at the vocoder's rate -> natural-log mel [B, n_mels, frames]:
* pad (win - hop) // 2 samples on the left and max((win - hop + 1) // 2, win - N - left) on the right, by
  reflection, or with zeros when that right pad is not shorter than the input (reflection needs a longer input);
* |STFT| with a periodic Hann window, center=False, magnitude sqrt(re^2 + im^2 + 1e-9);
* librosa's slaney mel filterbank (float32), then log(max(mel, 1e-5)).
frames = (N + left + right - win) // hop + 1 (= N // hop for N >= hop).

keyshift (semitones, training-time pitch augmentation): window and FFT size become round(size * 2**(k/12)); the
magnitudes are cut or zero-padded back to n_fft // 2 + 1 bins and scaled by win / win_shifted.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MAGNITUDE_EPS = 1e-9  # added under the square root of |STFT|^2
LOG_FLOOR = 1e-5  # mel values are clamped to this before the log (log floor -11.5129)
SEMITONES_PER_OCTAVE = 12


@dataclass(frozen=True)
class MelSettings:
    """The STFT / mel settings of a vocoder's config.json (rates in Hz, sizes in samples)."""
    sample_rate: int = 44100
    n_mels: int = 128
    n_fft: int = 2048
    win_size: int = 2048
    hop_size: int = 512
    fmin: float = 40.0
    fmax: float = 16000.0


def mel_filterbank(s: MelSettings) -> torch.Tensor:
    """librosa's slaney-scale, slaney-normalised mel basis [n_mels, n_fft // 2 + 1] float32."""
    from librosa.filters import mel as librosa_mel

    basis = librosa_mel(sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax)
    return torch.from_numpy(basis).float()


def _pads(n: int, win: int, hop: int) -> tuple[int, int, str]:
    """(left, right, mode) padding of an input of n samples, upstream's rule."""
    left = (win - hop) // 2
    right = max((win - hop + 1) // 2, win - n - left)
    return left, right, "reflect" if right < n else "constant"


class MelExtractor:
    """audio [B, N] -> natural-log mel [B, n_mels, frames]; the filterbank and windows are built once per device."""

    def __init__(self, settings: MelSettings) -> None:
        self.settings = settings
        self._basis: dict[str, torch.Tensor] = {}
        self._windows: dict[tuple[int, str], torch.Tensor] = {}

    def basis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        key = str(device)
        if key not in self._basis:
            self._basis[key] = mel_filterbank(self.settings).to(device)
        return self._basis[key]

    def _window(self, size: int, device: torch.device) -> torch.Tensor:
        key = (size, str(device))
        if key not in self._windows:
            self._windows[key] = torch.hann_window(size).to(device)
        return self._windows[key]

    def frames(self, n: int) -> int:
        """Mel frames of an input of n samples (keyshift 0)."""
        s = self.settings
        left, right, _ = _pads(n, s.win_size, s.hop_size)
        return (n + left + right - s.n_fft) // s.hop_size + 1

    def magnitude(self, audio: torch.Tensor, keyshift: float = 0.0) -> torch.Tensor:
        """|STFT| [B, n_fft // 2 + 1, frames] of audio [B, N] float32 (see the module docstring)."""
        s = self.settings
        factor = 2 ** (keyshift / SEMITONES_PER_OCTAVE)
        n_fft, win = round(s.n_fft * factor), round(s.win_size * factor)
        left, right, mode = _pads(audio.shape[-1], win, s.hop_size)
        padded = F.pad(audio.float()[:, None, :], (left, right), mode=mode)[:, 0, :]
        spec = torch.stft(padded, n_fft, hop_length=s.hop_size, win_length=win, window=self._window(win, audio.device),
                          center=False, normalized=False, onesided=True, return_complex=True)
        mag = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + MAGNITUDE_EPS)
        if keyshift != 0:
            bins = s.n_fft // 2 + 1
            if mag.shape[1] < bins:
                mag = F.pad(mag, (0, 0, 0, bins - mag.shape[1]))
            mag = mag[:, :bins, :] * s.win_size / win
        return mag

    def __call__(self, audio: torch.Tensor, keyshift: float = 0.0) -> torch.Tensor:
        """audio [B, N] float32 -> log-mel [B, n_mels, frames] (natural log)."""
        mel = torch.matmul(self.basis(audio.device), self.magnitude(audio, keyshift))
        return torch.log(torch.clamp(mel, min=LOG_FLOOR))
