"""The one loudness meter of the cover pipeline: ITU-R BS.1770-4 integrated loudness (K-weighting, 400 ms blocks,
absolute -70 LUFS and relative -10 LU gates) through pyloudnorm, and gains derived from it."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import SvcError

SILENT_LUFS = -70.0  # BS.1770's absolute gate: anything quieter measures as silence
MIN_METER_SECONDS = 0.4  # one gating block; shorter audio is padded with silence to be measured
MAX_MATCH_GAIN_DB = 30.0  # dB; a loudness match never moves a track more than this (a near-silent stem)


@lru_cache(maxsize=8)
def _meter(sample_rate: int):
    try:
        import pyloudnorm
    except ImportError:
        raise SvcError("Covers need the Python package 'pyloudnorm' (pip install pyloudnorm==0.2.0).") from None
    return pyloudnorm.Meter(sample_rate)  # BS.1770-4 K-weighting


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of float audio [C, N] or [N] in LUFS; SILENT_LUFS for silence."""
    x = np.asarray(audio, dtype=np.float64)
    x = x[None] if x.ndim == 1 else x
    need = int(math.ceil(MIN_METER_SECONDS * sample_rate))
    if x.shape[1] < need:
        x = np.pad(x, ((0, 0), (0, need - x.shape[1])))
    if not np.any(x):
        return SILENT_LUFS
    value = float(_meter(int(sample_rate)).integrated_loudness(x.T))  # pyloudnorm takes [N, C]
    return value if math.isfinite(value) and value > SILENT_LUFS else SILENT_LUFS


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def gain_to_target(audio: np.ndarray, sample_rate: int, target_lufs: float) -> float:
    """dB that bring `audio` to `target_lufs` (0 for silence), bounded by MAX_MATCH_GAIN_DB."""
    now = integrated_lufs(audio, sample_rate)
    if now <= SILENT_LUFS:
        return 0.0
    return float(np.clip(target_lufs - now, -MAX_MATCH_GAIN_DB, MAX_MATCH_GAIN_DB))
