"""Integrated loudness (ITU-R BS.1770-4, our own implementation) and normalisation with a peak ceiling.

K-weighting = high-shelf (+4 dB above ~1.7 kHz) then high-pass (~38 Hz), both biquads designed for any rate
from the analog prototypes behind the standard's 48 kHz coefficients. Mean-square power over 400 ms blocks with
75 % overlap, absolute gate -70 LUFS, relative gate -10 LU; loudness = -0.691 + 10 log10(power). Mono only
(channel weight 1). A full-scale 997 Hz sine measures -3.01 LUFS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import lfilter

BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1  # 75 % overlap
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the absolute-gated loudness
OFFSET = -0.691  # dB, makes a 997 Hz sine read its RMS level (minus 3.01 dB for a full-scale sine)
LIMITER_LOOKAHEAD_SECONDS = 0.005
CEILING_MARGIN = 0.999  # keep 16-bit rounding under the ceiling
NORMALISE_PASSES = 4


def k_weighting(sr: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(b, a), (b, a)]: the two K-weighting biquads at `sr` Hz."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2.0 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1.0 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return [(shelf_b, shelf_a), (hp_b, hp_a)]


def block_powers(wav: np.ndarray, sr: int) -> np.ndarray:
    """Mean square of the K-weighted signal in each gating block -> [blocks] float64 (empty if < 400 ms)."""
    y = np.asarray(wav, dtype=np.float64)
    for b, a in k_weighting(sr):
        y = lfilter(b, a, y)
    block, step = round(BLOCK_SECONDS * sr), round(STEP_SECONDS * sr)
    if y.shape[0] < block:
        return np.zeros(0)
    starts = np.arange(0, y.shape[0] - block + 1, step)
    csum = np.concatenate([[0.0], np.cumsum(y * y)])
    return (csum[starts + block] - csum[starts]) / block


def integrated_loudness(wav: np.ndarray, sr: int) -> float:
    """Gated integrated loudness of mono float audio [N] in LUFS; -inf when silent or shorter than 400 ms."""
    z = block_powers(wav, sr)
    with np.errstate(divide="ignore"):
        levels = OFFSET + 10.0 * np.log10(z)
    z = z[levels > ABSOLUTE_GATE]
    if z.size == 0:
        return float("-inf")
    gate = OFFSET + 10.0 * math.log10(float(z.mean())) + RELATIVE_GATE
    with np.errstate(divide="ignore"):
        z = z[OFFSET + 10.0 * np.log10(z) > gate]
    return OFFSET + 10.0 * math.log10(float(z.mean()))


def peak_dbfs(wav: np.ndarray) -> float:
    """Sample peak in dBFS (-inf for silence)."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def limit_peaks(wav: np.ndarray, sr: int, ceiling: float) -> np.ndarray:
    """Look-ahead limiter: smooth gain reduction so |out| <= ceiling (linear) everywhere; float32 [N].

    The needed gain min(1, ceiling/|x|) goes through a moving minimum (width 2L+1) and then a moving average
    (width L+1): every averaged value is a minimum over a window that contains the sample itself, so the gain
    never exceeds what that sample needs.
    """
    x = np.asarray(wav, dtype=np.float64)
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    if need.min() >= 1.0:
        return x.astype(np.float32)
    half = max(1, round(LIMITER_LOOKAHEAD_SECONDS * sr))
    gain = minimum_filter1d(need, size=4 * half + 1, mode="nearest")
    gain = uniform_filter1d(gain, size=2 * half + 1, mode="nearest")
    gain = np.minimum(gain, need)  # float rounding of the average must not creep above the need
    return (x * gain).astype(np.float32)


@dataclass(frozen=True)
class LoudnessResult:
    """What normalisation did to one clip (levels in LUFS / dBFS, gain in dB)."""

    before_lufs: float
    after_lufs: float
    gain_db: float
    peak_dbfs: float
    limited: bool  # the limiter reduced some peaks


def normalise(wav: np.ndarray, sr: int, target_lufs: float = -23.0, ceiling_dbfs: float = -1.0
              ) -> tuple[np.ndarray, LoudnessResult]:
    """Gain to `target_lufs`, peaks limited to `ceiling_dbfs`, repeated a few times because limiting lowers
    the loudness a little. Returns (float32 [N], result). Silent input (-inf LUFS) is returned unchanged."""
    before = integrated_loudness(wav, sr)
    x = np.asarray(wav, dtype=np.float32)
    if not math.isfinite(before):
        return x, LoudnessResult(before, before, 0.0, peak_dbfs(x), False)
    ceiling = 10.0 ** (ceiling_dbfs / 20.0) * CEILING_MARGIN
    total_gain_db, current, out, limited = 0.0, before, x, False
    for _ in range(NORMALISE_PASSES):
        total_gain_db += target_lufs - current
        scaled = x * np.float32(10.0 ** (total_gain_db / 20.0))
        out = limit_peaks(scaled, sr, ceiling)
        limited = limited or bool(np.any(out != scaled))
        current = integrated_loudness(out, sr)
        if abs(current - target_lufs) < 0.05:
            break
    return out, LoudnessResult(before, current, total_gain_db, peak_dbfs(out), limited)
