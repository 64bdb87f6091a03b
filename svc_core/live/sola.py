"""SOLA (synchronised overlap-add) between consecutive live blocks.

Each step converts a window that ends with the new block, so consecutive outputs overlap. Where they meet, the
waveforms are out of phase (every window starts its excitation afresh); SOLA shifts the new output by the lag
(0..search samples) that best lines its head up with the previous block's tail (normalised cross-correlation),
then blends the two with a raised-cosine fade (the two are aligned, so the gains add to 1, not their squares). Written here rather than taken from a library: it is ~30 lines of
numpy, and the audio libraries we use (librosa, soxr) have no streaming overlap-add.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-8


def sola_offset(tail: np.ndarray, candidate: np.ndarray, search: int) -> int:
    """The lag k in [0, search] where candidate[k:k + len(tail)] best matches `tail` (float32 [L]).

    candidate: float32 [>= L + search]. Normalised cross-correlation, so loudness does not pick the lag; a
    silent tail (all zeros) gives 0.
    """
    length = len(tail)
    if search <= 0 or length == 0 or not np.any(tail):
        return 0
    region = np.asarray(candidate[: length + search], dtype=np.float64)
    numerator = np.correlate(region, np.asarray(tail, dtype=np.float64), mode="valid")  # [search + 1]
    energy = np.convolve(region * region, np.ones(length), mode="valid")
    return int(np.argmax(numerator / np.sqrt(energy + _EPS)))


def fade_windows(length: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade_in, fade_out), float32 [length] each, raised cosine: fade_in + fade_out == 1."""
    if length <= 0:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty
    phase = (np.arange(length, dtype=np.float64) + 0.5) / length * (np.pi / 2)
    return (np.sin(phase) ** 2).astype(np.float32), (np.cos(phase) ** 2).astype(np.float32)


def crossfade(tail: np.ndarray, head: np.ndarray, windows: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Blend the previous block's `tail` into the new block's `head` (both float32 [L]) -> float32 [L]."""
    fade_in, fade_out = windows
    return (tail * fade_out + head * fade_in).astype(np.float32)
