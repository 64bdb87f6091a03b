"""RVC's signal steps around the model: 48 Hz high-pass, reflect padding, the quiet-point split of long inputs,
loudness mixing (change_rms) and the final peak limit / int16 step. All at RVC's numbers (WebUI
infer/modules/vc/pipeline.py, CPU/fp32 config: x_pad 1 s, x_query 6 s, x_center 38 s, x_max 41 s).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from ..constants import ENCODER_SAMPLE_RATE
from .f0 import RVC_F0_HOP

HIGHPASS_ORDER = 5  # Butterworth order of RVC's input high-pass
HIGHPASS_HZ = 48.0  # its cut-off
INT16_FULL_SCALE = 32768  # RVC multiplies by this (and truncates) to write int16
PEAK_CEILING = 0.99  # RVC scales the output down when its peak exceeds this
RMS_FLOOR = 1e-6  # change_rms: output loudness is clamped to at least this before dividing
RMS_FRAMES = 64  # frames per block in frame_rms (64 x 1 s of samples)
RMS_BLOCK = 2**20  # output samples change_rms scales at a time (bounds its float64 temporaries to ~40 MB)
DEFAULT_RESAMPLE_QUALITY = "HQ"  # soxr quality of librosa's default res_type ("soxr_hq"), which RVC's resample uses


@dataclass(frozen=True)
class RvcWindows:
    """RVC's padding/split windows in seconds (its CPU/fp32 Config; the fp16 GPU config uses 3/10/60/65)."""

    x_pad: float = 1.0  # reflect padding around the input (and around every segment's model call)
    x_query: float = 6.0  # a cut point is searched within +-x_query of every x_center mark
    x_center: float = 38.0  # spacing of the cut marks
    x_max: float = 41.0  # inputs up to this long (after 5 ms padding per side) are converted in one segment

    def __post_init__(self) -> None:
        if not 0 < self.x_query <= self.x_center or self.x_pad <= 0 or self.x_max <= 0:
            raise ValueError(f"RvcWindows needs 0 < x_query <= x_center and positive x_pad / x_max: {self}")

    def samples(self, seconds: float, rate: int = ENCODER_SAMPLE_RATE) -> int:
        return int(rate * seconds)

    @property
    def t_pad(self) -> int:
        return self.samples(self.x_pad)


@dataclass(frozen=True)
class Segment:
    """One model call: samples [start, stop) of the padded input (audio_pad), f0 frames [f0_start, f0_stop)."""

    start: int
    stop: int
    f0_start: int
    f0_stop: int

    @property
    def audio_range(self) -> tuple[int, int]:
        return self.start, self.stop


@lru_cache(maxsize=1)
def butter_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """(b, a) float64 [6]: RVC's 5th-order Butterworth high-pass at 48 Hz for 16 kHz audio."""
    from scipy import signal

    return signal.butter(N=HIGHPASS_ORDER, Wn=HIGHPASS_HZ, btype="high", fs=ENCODER_SAMPLE_RATE)


def highpass(audio16k: np.ndarray) -> np.ndarray:
    """16 kHz audio [N] -> float64 [N] through the zero-phase (filtfilt, odd padding) 48 Hz high-pass."""
    from scipy import signal

    b, a = butter_coefficients()
    return signal.filtfilt(b, a, np.asarray(audio16k))


def reflect_pad(audio: np.ndarray, pad: int) -> np.ndarray:
    """[N] -> [N + 2 pad], mirrored at both ends without repeating the edge sample (numpy 'reflect')."""
    return np.pad(audio, (pad, pad), mode="reflect")


def _window_sum(audio_hp: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """RVC's audio_sum[lo:hi]: sum of |x| over the 160 samples centred on each position (x reflect-padded by 80),
    added in RVC's order (shift 0 to 159, float64) so that ties resolve as RVC's do. Memory: ~hi - lo samples."""
    n = audio_hp.shape[0]
    index = np.arange(lo, hi + RVC_F0_HOP - 1) - RVC_F0_HOP // 2  # positions in audio_hp of audio_pad0[lo:...]
    index = np.abs(index)  # reflection at the start (no edge repeat)
    index = np.where(index >= n, 2 * (n - 1) - index, index)  # and at the end
    magnitude = np.abs(audio_hp[index])
    total = np.zeros(hi - lo, dtype=np.result_type(audio_hp.dtype, np.float64))
    for shift in range(RVC_F0_HOP):
        total += magnitude[shift: shift + hi - lo]
    return total


def cut_points(audio_hp: np.ndarray, windows: RvcWindows) -> list[int]:
    """Sample positions (in audio_hp) where RVC splits a long input: the quietest 10 ms within +-x_query of every
    x_center mark (first minimum). Empty when the input (+ 2 x 80 samples) is not longer than x_max."""
    n = audio_hp.shape[0]
    if n + RVC_F0_HOP <= windows.samples(windows.x_max):
        return []
    query, center = windows.samples(windows.x_query), windows.samples(windows.x_center)
    cuts = []
    for mark in range(center, n, center):
        lo, hi = mark - query, min(mark + query, n)
        cuts.append(lo + int(np.argmin(_window_sum(audio_hp, lo, hi))))
    return cuts


def plan_segments(audio_hp: np.ndarray, windows: RvcWindows = RvcWindows()) -> list[Segment]:
    """RVC's segments over audio_pad (audio_hp reflect-padded by x_pad): each cut t (rounded down to a 160-sample
    frame) ends a segment at t + 2 t_pad + 160 (f0 up to frame (t + 2 t_pad) // 160), the next one starts at t;
    the last runs to the end. One segment [0, len(audio_pad)) when there is no cut."""
    t_pad2 = 2 * windows.t_pad
    total = audio_hp.shape[0] + t_pad2
    segments, start = [], 0
    for cut in cut_points(audio_hp, windows):
        t = cut // RVC_F0_HOP * RVC_F0_HOP
        segments.append(Segment(start, min(t + t_pad2 + RVC_F0_HOP, total), start // RVC_F0_HOP,
                                min(t + t_pad2, total) // RVC_F0_HOP))
        start = t
    segments.append(Segment(start, total, start // RVC_F0_HOP, total // RVC_F0_HOP))
    return segments


def frame_rms(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """librosa.feature.rms(y=y) for 1-D y: centred frames (zero padding of frame_length // 2 per side), RMS of
    each -> float32 [1 + len(y) // hop_length] (librosa squares in float32 whatever y's dtype). Computed
    RMS_FRAMES frames at a time (memory ~ one block)."""
    half = frame_length // 2
    padded_len = y.shape[0] + 2 * half
    n_frames = 1 + (padded_len - frame_length) // hop_length
    out = np.empty(n_frames, dtype=np.float32)
    for first in range(0, n_frames, RMS_FRAMES):
        last = min(first + RMS_FRAMES, n_frames)
        lo, hi = first * hop_length - half, (last - 1) * hop_length + frame_length - half  # in y's coordinates
        block = np.pad(y[max(lo, 0): min(hi, y.shape[0])], (max(-lo, 0), max(hi - y.shape[0], 0)))
        frames = np.lib.stride_tricks.sliding_window_view(block, frame_length)[::hop_length]
        out[first:last] = np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=-1))
    return out


def linear_resize(curve: np.ndarray, length: int, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) of `curve` [F] linearly resized to `length` (torch F.interpolate mode="linear",
    align_corners=False: source position (i + 0.5) * F / length - 0.5, clamped to the ends), float64."""
    curve = np.asarray(curve, dtype=np.float64).reshape(-1)
    position = (np.arange(start, stop, dtype=np.float64) + 0.5) * (curve.shape[0] / length) - 0.5
    position = np.maximum(position, 0.0)
    return np.interp(position, np.arange(curve.shape[0], dtype=np.float64), curve)


def change_rms(source: np.ndarray, source_sr: int, out: np.ndarray, out_sr: int, rate: float,
               block: int = RMS_BLOCK) -> np.ndarray:
    """RVC's loudness mix: out *= rms_in ** (1 - rate) * max(rms_out, 1e-6) ** (rate - 1), both RMS curves (librosa,
    1 s frames every 0.5 s, centred) linearly resized to len(out). rate 1 keeps the model's loudness, 0 imposes the
    input's. source: the high-passed input [N]; out: float32 [M], changed in place (`block` samples at a time, so
    the extra memory does not grow with M) and returned. The curves are float32, as librosa and RVC make them."""
    rms_in = frame_rms(source, source_sr // 2 * 2, source_sr // 2)
    rms_out = frame_rms(out, out_sr // 2 * 2, out_sr // 2)
    length = out.shape[0]
    for start in range(0, length, block):
        stop = min(start + block, length)
        level_in = linear_resize(rms_in, length, start, stop).astype(np.float32)
        level_out = np.maximum(linear_resize(rms_out, length, start, stop).astype(np.float32), np.float32(RMS_FLOOR))
        gain = np.power(level_in, np.float32(1.0 - rate)) * np.power(level_out, np.float32(rate - 1.0))
        out[start:stop] *= gain
    return out


def peak_scale(out: np.ndarray) -> float:
    """RVC's output scale: 1, or 0.99 / peak when the peak exceeds 0.99."""
    peak = float(np.abs(out).max(initial=0.0)) / PEAK_CEILING
    return 1.0 / peak if peak > 1 else 1.0


def peak_limit(out: np.ndarray) -> np.ndarray:
    """float32 [M] -> float32 [M] scaled as RVC scales before writing int16 (peak at most 0.99)."""
    scale = peak_scale(out)
    return out if scale == 1.0 else (out * np.float32(scale)).astype(np.float32)


def to_int16(out: np.ndarray, scale: Optional[float] = None) -> np.ndarray:
    """RVC's int16 output: float32 product with 32768 (/ peak when above 0.99), truncated toward zero."""
    factor = INT16_FULL_SCALE * (peak_scale(out) if scale is None else scale)
    return (out * np.float32(factor)).astype(np.int16)


def resample_output(out: np.ndarray, sr: int, resample_sr: int) -> np.ndarray:
    """RVC's optional output resampling (librosa's default soxr HQ), only when resample_sr >= 16 kHz and differs."""
    if not resample_sr or resample_sr == sr or resample_sr < ENCODER_SAMPLE_RATE:
        return out
    import soxr

    return soxr.resample(out, sr, resample_sr, quality=DEFAULT_RESAMPLE_QUALITY).astype(np.float32, copy=False)
