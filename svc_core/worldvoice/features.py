"""WORLD features of a voice: analysis, coding, decoding and synthesis on the so-vits frame grid.

A frame is HOP_LENGTH = 512 samples at 44.1 kHz (11.61 ms), the same grid as the f0/uv and the stretched content
units of so-vits-svc, so one network frame maps to one WORLD frame. Per frame the voice is described by
    coded spectral envelope  [SP_DIMS]   (pyworld.code_spectral_envelope: a mel-cepstrum-like code of log power)
    coded band aperiodicity  [n_ap]      (pyworld.code_aperiodicity: 5 bands at 44.1 kHz)
and the f0 comes from the pitch tracker at conversion time, so the output follows it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import HOP_LENGTH, MODEL_SAMPLE_RATE
from ..f0.classic import load_pyworld

SP_DIMS = 60  # coded spectral envelope dimensions
F0_FLOOR = 50.0  # Hz; CheapTrick's lowest f0 (sets its FFT size: 4096 at 44.1 kHz)
FRAME_MS = HOP_LENGTH / MODEL_SAMPLE_RATE * 1000.0  # 11.61 ms per frame


def fft_size(sample_rate: int = MODEL_SAMPLE_RATE) -> int:
    return int(load_pyworld().get_cheaptrick_fft_size(sample_rate, F0_FLOOR))


def n_aperiodicity(sample_rate: int = MODEL_SAMPLE_RATE) -> int:
    return int(load_pyworld().get_num_aperiodicities(sample_rate))


@dataclass
class WorldFrames:
    """One clip's WORLD description: coded [T, SP_DIMS + n_ap] float32, f0 [T] Hz (0 = unvoiced)."""
    coded: np.ndarray
    f0: np.ndarray


def analyse(wav: np.ndarray, f0: np.ndarray, uv: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> WorldFrames:
    """float [N] audio + per-frame f0 (Hz, interpolated through unvoiced frames) and uv -> WorldFrames.

    The envelope is analysed with the interpolated f0 everywhere (CheapTrick needs a period to smooth over);
    the aperiodicity with unvoiced frames at 0, so they come out fully aperiodic.
    """
    pw = load_pyworld()
    x = np.ascontiguousarray(wav, dtype=np.float64)
    n = len(f0)
    t = np.arange(n, dtype=np.float64) * HOP_LENGTH / sample_rate
    f0_env = np.maximum(np.asarray(f0, np.float64), F0_FLOOR)
    f0_ap = np.where(np.asarray(uv) > 0.5, f0_env, 0.0)
    size = fft_size(sample_rate)
    sp = pw.cheaptrick(x, f0_env, t, sample_rate, f0_floor=F0_FLOOR, fft_size=size)
    ap = pw.d4c(x, f0_ap, t, sample_rate, fft_size=size)
    coded_sp = pw.code_spectral_envelope(sp, sample_rate, SP_DIMS)
    coded_ap = pw.code_aperiodicity(ap, sample_rate)
    coded = np.concatenate([coded_sp, coded_ap], axis=1).astype(np.float32)
    return WorldFrames(coded=coded, f0=f0_ap.astype(np.float32))


def decode(coded: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """coded [T, SP_DIMS + n_ap] -> (power envelope, aperiodicity), each float64 [T, fft_size // 2 + 1]."""
    pw = load_pyworld()
    size = fft_size(sample_rate)
    coded = np.ascontiguousarray(coded, dtype=np.float64)
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(coded[:, :SP_DIMS]), sample_rate, size)
    ap = pw.decode_aperiodicity(np.ascontiguousarray(np.minimum(coded[:, SP_DIMS:], -1e-6)), sample_rate, size)
    return sp, ap


def synthesize(coded: np.ndarray, f0: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """coded [T, SP_DIMS + n_ap] + f0 [T] Hz (0 = unvoiced) -> float32 [T * HOP_LENGTH] audio.

    Unvoiced frames are rendered fully aperiodic (pure noise) whatever the coded aperiodicity says: WORLD places
    pulses at a default 500 Hz in frames without f0, and only a 0 dB aperiodicity keeps them silent.
    """
    pw = load_pyworld()
    coded = np.array(coded, dtype=np.float64)
    coded[np.asarray(f0) <= 0, SP_DIMS:] = 0.0
    sp, ap = decode(coded, sample_rate)
    out = pw.synthesize(np.ascontiguousarray(f0, dtype=np.float64), sp, ap, sample_rate, FRAME_MS)
    n = len(f0) * HOP_LENGTH
    out = np.pad(out, (0, max(0, n - len(out))))[:n]
    return out.astype(np.float32)


def perturb(wav: np.ndarray, frames: WorldFrames, formant: float, semitones: float,
            sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """The same clip with its formants scaled by `formant` and its pitch moved by `semitones` (WORLD).

    Used on training inputs only (information perturbation): the content encoder sees another "speaker",
    the target stays the clip's own envelope, so the network cannot take the voice from the content features.
    """
    pw = load_pyworld()
    sp, ap = decode(frames.coded, sample_rate)
    bins = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(bins / formant, 0, sp.shape[1] - 1)
    sp_w = np.stack([np.interp(src, bins, row) for row in sp])
    f0 = frames.f0.astype(np.float64) * 2.0 ** (semitones / 12.0)
    out = pw.synthesize(f0, np.ascontiguousarray(sp_w), ap, sample_rate, FRAME_MS)
    return out[: len(wav)].astype(np.float32)
