"""Synthetic "sung" clips for end-to-end tests: harmonic notes with vibrato, breaths of silence, a noise floor."""
from __future__ import annotations

import numpy as np

NOTES_HZ = (220.0, 247.0, 262.0, 294.0, 330.0, 294.0, 262.0)


def sung_phrase(seconds: float, sr: int = 44100, gap_every: float = 3.0, gap: float = 0.6,
                seed: int = 0) -> np.ndarray:
    """float32 [seconds * sr]: a melody of notes (0.5 s each) with 5.5 Hz vibrato and 8 harmonics, silent for
    `gap` seconds every `gap_every` seconds (so the slicer cuts there), plus a -60 dBFS noise floor."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    note = np.asarray(NOTES_HZ)[(t / 0.5).astype(int) % len(NOTES_HZ)]
    f0 = note * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(np.sin(k * phase) / k ** 1.2 for k in range(1, 9))
    in_gap = (t % gap_every) > (gap_every - gap)
    wav = np.where(in_gap, 0.0, wav) * 0.25 / np.max(np.abs(wav))
    wav += 0.001 * np.random.default_rng(seed).standard_normal(n)
    return wav.astype(np.float32)
