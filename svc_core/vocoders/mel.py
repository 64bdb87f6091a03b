"""The openvpi NSF-HiFiGAN log-mel (upstream `vdecoder/nsf_hifigan/nvSTFT.py` STFT.get_mel), re-implemented.

audio [B, N] float32 in [-1, 1] at the vocoder's rate -> natural-log mel [B, n_mels, frames]:
* pad (win - hop) // 2 samples on the left and max((win - hop + 1) // 2, win - N - left) on the right, by
  reflection, or with zeros when that right pad is not shorter than the input (reflection needs a longer input);
* |STFT| with a periodic Hann window, center=False, magnitude sqrt(re^2 + im^2 + 1e-9);
* librosa's slaney mel filterbank (float32; computed here the same way), then log(max(mel, 1e-5)).
frames = (N + left + right - win) // hop + 1 (= N // hop for N >= hop).

keyshift (semitones, training-time pitch augmentation): window and FFT size become round(size * 2**(k/12)); the
magnitudes are cut or zero-padded back to n_fft // 2 + 1 bins and scaled by win / win_shifted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
SLANEY_HZ_PER_MEL = 200.0 / 3  # linear part: Hz per mel
SLANEY_LOG_START_HZ = 1000.0  # where the log part starts
SLANEY_LOG_STEP = np.log(6.4) / 27.0  # natural-log step per mel in the log part


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel of frequencies in Hz (float64)."""
    hz = np.asarray(hz, dtype=np.float64)
    mels = hz / SLANEY_HZ_PER_MEL
    log_part = hz >= SLANEY_LOG_START_HZ
    start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL
    mels[log_part] = start_mel + np.log(hz[log_part] / SLANEY_LOG_START_HZ) / SLANEY_LOG_STEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Frequencies in Hz of slaney mels (float64)."""
    mels = np.asarray(mels, dtype=np.float64)
    hz = SLANEY_HZ_PER_MEL * mels
    start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL
    log_part = mels >= start_mel
    hz[log_part] = SLANEY_LOG_START_HZ * np.exp(SLANEY_LOG_STEP * (mels[log_part] - start_mel))
    return hz


def mel_filterbank(s: MelSettings) -> torch.Tensor:
    """Slaney-scale, slaney-normalised triangular mel filters [n_mels, n_fft // 2 + 1] float32: the numbers of
    librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (upstream's basis; same float64 steps and float32 roundings)
    without importing librosa (seconds of numba start-up in a conversion)."""
    bins = np.fft.rfftfreq(n=s.n_fft, d=1.0 / s.sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array([s.fmin]))[0], hz_to_mel(np.array([s.fmax]))[0], s.n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins)
    weights = np.zeros((s.n_mels, len(bins)), dtype=np.float32)
    for i in range(s.n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # float64 product rounded to float32, as librosa
    return torch.from_numpy(weights)


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
