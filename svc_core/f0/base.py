"""The F0Predictor contract and the post-processing every predictor shares (so-vits-svc 4.1 conventions).

Frames: one f0 value per `hop_length` samples of the input, p_len = N // hop_length by default.
Raw f0 uses 0 Hz for unvoiced frames; the interpolated f0 the synthesizer reads never does.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from ..constants import F0_MAX, F0_MIN, HOP_LENGTH, MODEL_SAMPLE_RATE
from ..errors import AudioError, OptionError

SEMITONES_PER_OCTAVE = 12


def transpose(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Shift pitch by `semitones` (12 = one octave up): f0 * 2**(semitones/12). Zeros stay zero."""
    return f0 * (2.0 ** (semitones / SEMITONES_PER_OCTAVE))


def interpolate_unvoiced(raw_f0: np.ndarray, frame_seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Fill unvoiced frames the way so-vits-svc 4.1 does.

    raw_f0: [T] Hz, <= 0 means unvoiced. Returns (f0 [T] float32, uv [T] float32) where uv = 1 on voiced
    frames, and f0 is linear in time between voiced frames, holds the first/last voiced value at the edges,
    equals the single voiced value everywhere when only one frame is voiced, and is all 0 when none is.
    """
    raw = np.asarray(raw_f0, dtype=np.float64).reshape(-1)
    uv = (raw > 0.0).astype(np.float32)
    voiced = np.flatnonzero(raw > 0.0)
    if voiced.size == 0:
        return np.zeros(raw.shape[0], dtype=np.float32), uv
    if voiced.size == 1:
        return np.full(raw.shape[0], raw[voiced[0]], dtype=np.float32), uv
    values = raw[voiced]
    # time axis in seconds: voiced positions from float32 frame indices, like upstream (same float rounding)
    times = np.arange(raw.shape[0]) * frame_seconds
    voiced_times = frame_seconds * voiced.astype(np.float32)
    f0 = np.interp(times, voiced_times, values, left=values[0], right=values[-1])
    return f0.astype(np.float32), uv


def resize_nearest(values: np.ndarray, target_len: int) -> np.ndarray:
    """Nearest-neighbour resize [T] -> [target_len] with source index floor(i * T / target_len).

    Same indexing as torch.nn.functional.interpolate(mode="nearest"), which upstream uses.
    """
    values = np.asarray(values).reshape(-1)
    if target_len <= 0:
        return values[:0].copy()
    if values.size == 0:
        return np.zeros(target_len, dtype=values.dtype)
    scale = values.shape[0] / target_len
    index = np.minimum(np.floor(np.arange(target_len) * scale).astype(np.int64), values.shape[0] - 1)
    return values[index]


def resize_with_gaps(values: np.ndarray, target_len: int, floor_hz: float = 0.001) -> np.ndarray:
    """Linear resize [T] -> [target_len] where values below `floor_hz` are gaps (upstream dio/harvest).

    Any output frame that touches a gap becomes 0 (gaps are NaN during interpolation, then zeroed).
    """
    source = np.array(values, dtype=np.float64).reshape(-1)
    if target_len <= 0:
        return np.zeros(0, dtype=np.float64)
    if source.size == 0:
        return np.zeros(target_len, dtype=np.float64)
    source[source < floor_hz] = np.nan
    n = source.shape[0]
    positions = np.arange(0, n * target_len, n)[:target_len] / target_len
    resized = np.interp(positions, np.arange(n), source)
    return np.nan_to_num(resized)


def validate_wav(wav: np.ndarray) -> np.ndarray:
    """Check a mono waveform [N]; returns it as contiguous float32. Raises AudioError on bad input."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    arr = np.asarray(wav)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise AudioError(f"F0 prediction needs mono audio as a 1-D array; got an array of shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(f"F0 prediction needs float audio in [-1, 1]; got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise AudioError("The audio contains NaN or infinite samples; F0 cannot be computed from it.")
    return np.ascontiguousarray(arr, dtype=np.float32)


class F0Predictor(ABC):
    """Turns a waveform into per-frame f0 (Hz) and a voiced/unvoiced flag, upstream-compatible.

    Subclasses implement `compute_raw_f0`; this class adds validation and 4.1's interpolation.
    """

    name: str = "base"

    def __init__(
        self,
        hop_length: int = HOP_LENGTH,
        sampling_rate: int = MODEL_SAMPLE_RATE,
        device: str = "cpu",
        threshold: float = 0.05,
        f0_min: float = F0_MIN,
        f0_max: float = F0_MAX,
    ) -> None:
        if int(hop_length) <= 0:
            raise OptionError(f"hop_length must be a positive number of samples, not {hop_length}.")
        if int(sampling_rate) <= 0:
            raise OptionError(f"sampling_rate must be a positive rate in Hz, not {sampling_rate}.")
        self.hop_length = int(hop_length)
        self.sampling_rate = int(sampling_rate)
        self.device = torch.device(device)
        self.threshold = float(threshold)
        self.f0_min = float(f0_min)
        self.f0_max = float(f0_max)

    def _frames(self, wav: np.ndarray, p_len: int | None) -> int:
        if p_len is None:
            return wav.shape[0] // self.hop_length
        if int(p_len) < 0:
            raise OptionError(f"p_len must be a frame count >= 0, not {p_len}.")
        return int(p_len)

    @abstractmethod
    def _raw_f0(self, wav: np.ndarray, p_len: int) -> np.ndarray:
        """Raw f0 [p_len] Hz (0 = unvoiced) for validated float32 audio [N] at self.sampling_rate."""

    def _raw_f0_float64(self, wav: np.ndarray, p_len: int | None) -> np.ndarray:
        wav = validate_wav(wav)
        p_len = self._frames(wav, p_len)
        if p_len == 0:
            return np.zeros(0, dtype=np.float64)
        raw = np.asarray(self._raw_f0(wav, p_len), dtype=np.float64).reshape(-1)
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        assert raw.shape[0] == p_len, f"{self.name} returned {raw.shape[0]} frames, expected {p_len}"
        return raw

    def compute_raw_f0(self, wav: np.ndarray, p_len: int | None = None) -> np.ndarray:
        """Raw f0 [p_len] float32 Hz, 0 on unvoiced frames, before interpolation."""
        return self._raw_f0_float64(wav, p_len).astype(np.float32)

    def compute_f0_uv(self, wav: np.ndarray, p_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(f0 [p_len] float32 Hz interpolated through unvoiced frames, uv [p_len] float32 1 = voiced).

        Interpolation runs in float64 on the predictor's native output, in seconds, as upstream does, so the
        float32 result is bit-identical to upstream's.
        """
        frame_seconds = self.hop_length / self.sampling_rate
        return interpolate_unvoiced(self._raw_f0_float64(wav, p_len), frame_seconds)

    def compute_f0(self, wav: np.ndarray, p_len: int | None = None) -> np.ndarray:
        """Interpolated f0 [p_len] float32 Hz (what upstream's compute_f0 returns)."""
        return self.compute_f0_uv(wav, p_len)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hop_length={self.hop_length}, sampling_rate={self.sampling_rate})"
