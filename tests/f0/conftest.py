"""Synthetic test audio with a known f0 contour."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

SR = 44100
HOP = 512
N_HARMONICS = 8
NOISE_STD = 0.003  # about -50 dBFS of white noise, as in a real recording (see harmonic_tone)


@dataclass
class ToneCase:
    wav: np.ndarray  # [N] float32 at SR
    f0_at: callable  # seconds -> true f0 in Hz
    gap: tuple[float, float]  # seconds of silence (start, end)

    def frame_times(self, p_len: int) -> np.ndarray:
        return np.arange(p_len) * HOP / SR


def harmonic_tone(seconds: float, f0_start: float, f0_end: float, gap: tuple[float, float], n_extra: int = 0) -> ToneCase:
    """Exponential f0 sweep with 8 harmonics (1/k amplitudes), silent inside `gap`, 10 ms fades at the gap.

    A low noise floor is added everywhere: torchcrepe's loudness is relative to the loudest bin (top_db 80), so
    a perfectly clean harmonic tone sits on the -60 dB silence gate and CREPE would call it unvoiced.
    """
    n = int(seconds * SR) + n_extra
    t = np.arange(n) / SR
    rate = np.log(f0_end / f0_start) / seconds

    def f0_at(sec):
        return f0_start * np.exp(rate * np.asarray(sec))

    phase = 2 * np.pi * np.cumsum(f0_at(t)) / SR
    wav = sum(np.sin(k * phase) / k for k in range(1, N_HARMONICS + 1))
    fade = np.clip(np.minimum(np.abs(t - gap[0]), np.abs(t - gap[1])) / 0.01, 0, 1)
    envelope = np.where((t > gap[0]) & (t < gap[1]), 0.0, fade)
    wav = 0.3 * wav * envelope / np.max(np.abs(wav))
    wav = wav + NOISE_STD * np.random.default_rng(1234).standard_normal(n)
    return ToneCase(wav.astype(np.float32), f0_at, gap)


@pytest.fixture(scope="session")
def tone() -> ToneCase:
    """2.5 s sweep 180 -> 320 Hz with silence from 1.0 to 1.4 s; odd length (not a multiple of the hop)."""
    return harmonic_tone(2.5, 180.0, 320.0, (1.0, 1.4), n_extra=301)


@pytest.fixture(scope="session")
def short_tone() -> ToneCase:
    """1.2 s sweep 220 -> 260 Hz with silence from 0.5 to 0.75 s, for the slow full-size CREPE."""
    return harmonic_tone(1.2, 220.0, 260.0, (0.5, 0.75), n_extra=77)
