"""Remix: the converted vocal loudness-matched to the original vocal, gains, optional reverb on the vocal, the mix
brought to a target loudness, and a look-ahead peak limiter (4x oversampled peaks) so nothing clips.

The reverb is a convolution with a short synthetic impulse response (exponentially decaying noise, darker as it
decays, decorrelated per channel): 30 lines on scipy, which is pinned already. The libraries that ship algorithmic
reverbs are either GPL and in-process (pedalboard, GPL-3.0) or need a native build (pyroomacoustics); a synthetic
IR is deterministic (seeded) and fully ours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import lfilter, oaconvolve, resample_poly

from .loudness import db_to_gain, gain_to_target, integrated_lufs

CEILING_DBTP = -1.0  # dB true peak the mix is limited to (EBU R128 / streaming services' ceiling)
OVERSAMPLE = 4  # peaks are looked for at 4x the rate (inter-sample peaks, BS.1770 true-peak style)
LIMITER_WINDOW_SECONDS = 0.005  # look-ahead = release hold: the gain reaches a peak's level this early
MASTER_PASSES = 8  # limiter runs at most while searching the gain that meets the target after limiting
MASTER_TOLERANCE_LU = 0.1  # close enough to the target loudness
MAX_LIMITER_DRIVE_DB = 18.0  # dB the search may push into the limiter beyond the unlimited gain
MIN_SLOPE = 0.05  # LU per dB: the flattest loudness-vs-gain slope a secant step trusts (bounds one step to 20x)
REVERB_SECONDS = 1.6  # RT60 of the synthetic room (s)
REVERB_IR_SECONDS = 2.0  # impulse response length (s)
REVERB_PREDELAY_SECONDS = 0.02  # gap before the first reflection (s)
REVERB_DAMPING = 0.6  # one-pole low-pass coefficient applied progressively: the tail darkens
REVERB_SEED = 2023


@dataclass(frozen=True)
class MixReport:
    """What the remix did: loudness of the parts and the mix, gains applied (dB)."""

    original_vocal_lufs: float
    converted_vocal_lufs: float  # before matching
    match_gain_db: float  # applied to the converted vocal to reach the original vocal's loudness
    master_gain_db: float  # applied to the mix before limiting (last pass)
    mix_lufs: float  # after limiting
    peak_db: float  # sample peak of the mix after limiting


def synthetic_ir(sample_rate: int, channels: int = 2, rt60: float = REVERB_SECONDS) -> np.ndarray:
    """float32 [C, L] impulse response: seeded noise under a 60 dB / rt60 exponential decay, low-passed more and
    more towards its end, unit energy per channel, with a pre-delay."""
    rng = np.random.default_rng(REVERB_SEED)
    n = int(REVERB_IR_SECONDS * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = 10.0 ** (-3.0 * t / rt60)  # -60 dB at rt60
    out = np.zeros((channels, n + int(REVERB_PREDELAY_SECONDS * sample_rate)), np.float64)
    for c in range(channels):
        noise = rng.standard_normal(n)
        dark = lfilter([1 - REVERB_DAMPING], [1, -REVERB_DAMPING], noise)
        mix = np.minimum(1.0, t / rt60)  # bright at first, dark in the tail
        ir = ((1 - mix) * noise + mix * dark) * envelope
        out[c, -n:] = ir / np.sqrt(np.sum(ir ** 2))
    return out.astype(np.float32)


def add_reverb(vocal: np.ndarray, sample_rate: int, wet: float) -> np.ndarray:
    """float32 [C, N] -> [C, N]: (1 - wet) dry + wet * the vocal in the synthetic room, at the dry's loudness."""
    if wet <= 0:
        return vocal
    ir = synthetic_ir(sample_rate, vocal.shape[0])
    room = np.stack([oaconvolve(ch, ir[c])[: vocal.shape[1]] for c, ch in enumerate(vocal)]).astype(np.float32)
    out = (1 - wet) * vocal + wet * room
    gain = gain_to_target(out, sample_rate, integrated_lufs(vocal, sample_rate))
    return (out * db_to_gain(gain)).astype(np.float32)


def true_peak_envelope(audio: np.ndarray) -> np.ndarray:
    """[C, N] -> [N]: per sample, the largest |value| over the channels of the OVERSAMPLE x upsampled signal."""
    up = resample_poly(audio.astype(np.float64), OVERSAMPLE, 1, axis=1)
    n = audio.shape[1]
    per = np.abs(up[:, : n * OVERSAMPLE]).reshape(audio.shape[0], n, OVERSAMPLE).max(axis=2)
    return np.maximum(per.max(axis=0), np.abs(audio).max(axis=0))


def limit(audio: np.ndarray, sample_rate: int, ceiling_db: float = CEILING_DBTP) -> np.ndarray:
    """Look-ahead peak limiter: float32 [C, N] -> [C, N] with peaks (4x oversampled) at most `ceiling_db`.

    The needed gain per sample, min(1, ceiling / peak), is taken as a running minimum over a centred window and
    then averaged over the same window: each averaged value only mixes minima whose window holds the sample, so
    it never exceeds the needed gain there (no overshoot) while moving smoothly (no clicks). A final clip at the
    ceiling catches the last inter-sample residue."""
    ceiling = db_to_gain(ceiling_db)
    peaks = true_peak_envelope(audio)
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    if need.min() >= 1.0:
        return audio.astype(np.float32)
    width = 2 * int(LIMITER_WINDOW_SECONDS * sample_rate) + 1
    gain = uniform_filter1d(minimum_filter1d(need, width, mode="nearest"), width, mode="nearest")
    gain = np.minimum(gain, need)  # float rounding of the average
    return np.clip(audio * gain[None], -ceiling, ceiling).astype(np.float32)


def master(mix: np.ndarray, sample_rate: int, target_lufs: float,
           ceiling_db: float = CEILING_DBTP) -> tuple[np.ndarray, float]:
    """Bring the mix to `target_lufs`, limited at `ceiling_db` -> (mastered mix [C, N], gain before the limiter in
    dB). Limiting lowers the loudness, so the gain is searched (secant steps on loudness-after-limiting, which
    grows with the gain) until it is within MASTER_TOLERANCE_LU, at most MASTER_PASSES limiter runs and
    MAX_LIMITER_DRIVE_DB above the unlimited gain; a target that needs more is left short (the report says how
    loud the mix is)."""
    x = mix.astype(np.float32)
    first = gain_to_target(x, sample_rate, target_lufs)
    gain, out = first, limit(x * db_to_gain(first), sample_rate, ceiling_db)
    loud = integrated_lufs(out, sample_rate)
    previous: tuple[float, float] | None = None
    for _ in range(MASTER_PASSES - 1):
        if abs(loud - target_lufs) <= MASTER_TOLERANCE_LU:
            break
        slope = 1.0
        if previous is not None and gain != previous[0]:
            slope = float(np.clip((loud - previous[1]) / (gain - previous[0]), MIN_SLOPE, 1.0))
        step = (target_lufs - loud) / slope
        new = float(np.clip(gain + step, first - MAX_LIMITER_DRIVE_DB, first + MAX_LIMITER_DRIVE_DB))
        if new == gain:
            break
        previous = (gain, loud)
        gain, out = new, limit(x * db_to_gain(new), sample_rate, ceiling_db)
        loud = integrated_lufs(out, sample_rate)
    return out, gain


@dataclass(frozen=True)
class MixSettings:
    vocal_gain_db: float = 0.0
    accompaniment_gain_db: float = 0.0
    reverb: float = 0.0  # 0..1 wet
    target_lufs: float = -14.0


def remix(original_vocal: np.ndarray, converted_vocal: np.ndarray, accompaniment: np.ndarray, sample_rate: int,
          settings: MixSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, MixReport]:
    """All float32 [C, N] at `sample_rate` -> (converted vocal as it enters the mix, accompaniment as it enters the
    mix, the mastered mix, report). The converted vocal is first matched to the original vocal's loudness, so
    the song's balance holds at vocal_gain_db 0."""
    original_lufs = integrated_lufs(original_vocal, sample_rate)
    converted_lufs = integrated_lufs(converted_vocal, sample_rate)
    match = gain_to_target(converted_vocal, sample_rate, original_lufs) if original_lufs > -70 else 0.0
    vocal = converted_vocal * db_to_gain(match + settings.vocal_gain_db)
    vocal = add_reverb(vocal.astype(np.float32), sample_rate, settings.reverb)
    accomp = (accompaniment * db_to_gain(settings.accompaniment_gain_db)).astype(np.float32)
    mix, master_gain = master(vocal + accomp, sample_rate, settings.target_lufs)
    report = MixReport(original_lufs, converted_lufs, match, master_gain, integrated_lufs(mix, sample_rate),
                       float(20 * np.log10(max(np.abs(mix).max(), 1e-12))))
    return vocal.astype(np.float32), accomp, mix, report
