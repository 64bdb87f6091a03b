"""Seeded audio augmentation for speaker-independent training (16 kHz float32 mono, numpy).

Source-filter changes through WORLD (pyworld via `svc_core.f0.classic.load_pyworld`):
* `world_transform(..., pitch_ratio)`: pitch shift, formants kept;
* `world_transform(..., formant_alpha)`: vocal-tract-length change (spectral envelope frequency warp,
  alpha > 1 raises formants like a shorter tract), pitch kept;
* `world_transform(..., contour=singing_contour(...))`: speech f0 replaced by a sung melody (notes, portamento,
  vibrato) on voiced frames;
* `stretch_voiced`: voiced frames lengthened (sung vowels are long), unvoiced frames kept.
Waveform changes: `speed` (resampling: tempo, pitch and formants together), `gain`, `add_noise`, `reverb`.
All randomness comes from a `numpy.random.Generator` the caller seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
FRAME_PERIOD_MS = 5.0  # WORLD frame period


@dataclass
class World:
    """WORLD analysis of one clip: f0 [F] Hz (0 = unvoiced), sp and ap [F, fft/2+1], at FRAME_PERIOD_MS frames."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sr: int
    n_samples: int


def analyse(wav: np.ndarray, sr: int = SAMPLE_RATE) -> World:
    """dio + stonemask f0, cheaptrick envelope, d4c aperiodicity of float audio [N]."""
    from svc_core.f0.classic import load_pyworld

    pw = load_pyworld()
    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = pw.dio(x, sr, f0_floor=60.0, f0_ceil=800.0, frame_period=FRAME_PERIOD_MS)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    return World(f0, sp, ap, sr, len(x))


def synthesize(world: World, n_samples: int | None = None) -> np.ndarray:
    """WORLD resynthesis -> float32 [n_samples] (cut or zero-padded to exactly that length)."""
    from svc_core.f0.classic import load_pyworld

    pw = load_pyworld()
    y = pw.synthesize(np.ascontiguousarray(world.f0), np.ascontiguousarray(world.sp),
                      np.ascontiguousarray(world.ap), world.sr, FRAME_PERIOD_MS)
    n = world.n_samples if n_samples is None else n_samples
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    return y.astype(np.float32)


def warp_envelope(sp: np.ndarray, alpha: float) -> np.ndarray:
    """Frequency-warp spectral envelopes [F, K]: out(f) = in(f / alpha) (alpha > 1 moves formants up)."""
    k = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(k / alpha, 0, sp.shape[1] - 1)
    out = np.empty_like(sp)
    for i in range(sp.shape[0]):
        out[i] = np.interp(src, k, sp[i])
    return np.maximum(out, 1e-16)


def singing_contour(n_frames: int, rng: np.random.Generator, center_hz: float,
                    frame_ms: float = FRAME_PERIOD_MS) -> np.ndarray:
    """A melody f0 [n_frames] Hz: notes of 0.15-0.6 s on a major scale within +-7 semitones of center_hz,
    60 ms portamento, vibrato 4.5-6.5 Hz of 20-60 cents starting 0.15 s into each note, slow drift."""
    scale = np.array([-7, -5, -3, -1, 0, 2, 4, 5, 7])
    semis = np.empty(n_frames)
    onset_age = np.empty(n_frames)
    i = 0
    while i < n_frames:
        length = max(1, int(rng.uniform(150, 600) / frame_ms))
        semis[i:i + length] = rng.choice(scale)
        onset_age[i:i + length] = np.arange(min(length, n_frames - i)) * frame_ms / 1000.0
        i += length
    glide = max(1, int(60 / frame_ms))
    semis = np.convolve(np.pad(semis, (glide, glide), mode="edge"), np.ones(glide) / glide, "same")[glide:-glide]
    t = np.arange(n_frames) * frame_ms / 1000.0
    rate, depth = rng.uniform(4.5, 6.5), rng.uniform(20, 60)
    vibrato = depth / 100.0 * np.sin(2 * np.pi * rate * t) * np.clip((onset_age - 0.15) / 0.2, 0, 1)
    drift = 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
    return center_hz * 2.0 ** ((semis + vibrato + drift) / 12.0)


def world_transform(wav: np.ndarray, sr: int = SAMPLE_RATE, pitch_ratio: float = 1.0, formant_alpha: float = 1.0,
                    contour: np.ndarray | None = None, world: World | None = None) -> np.ndarray:
    """Pitch x pitch_ratio (or f0 := contour on voiced frames) and formants x formant_alpha; same length [N]."""
    w = world if world is not None else analyse(wav, sr)
    voiced = w.f0 > 0
    f0 = w.f0 * pitch_ratio
    if contour is not None:
        f0 = np.where(voiced, contour[: len(f0)] * pitch_ratio, 0.0)
    sp = warp_envelope(w.sp, formant_alpha) if formant_alpha != 1.0 else w.sp
    return synthesize(World(f0, sp, w.ap, sr, w.n_samples))


def stretch_voiced(world: World, factor: float) -> World:
    """Repeat voiced WORLD frames so voiced stretches last `factor` times longer (unvoiced frames unchanged)."""
    idx: list[int] = []
    acc = 0.0
    for i, f in enumerate(world.f0):
        reps = 1
        if f > 0:
            acc += factor
            reps = int(acc)
            acc -= reps
        idx.extend([i] * reps)
    idx = np.asarray(idx, dtype=np.int64)
    n_samples = int(round(len(idx) * FRAME_PERIOD_MS / 1000.0 * world.sr))
    return World(world.f0[idx], world.sp[idx], world.ap[idx], world.sr, n_samples)


def speed(wav: np.ndarray, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Play `factor` times faster (tempo, pitch and formants all x factor): length ~ N / factor."""
    import soxr

    if factor == 1.0:
        return wav.astype(np.float32)
    return soxr.resample(wav.astype(np.float32), sr * factor, sr, quality="HQ").astype(np.float32)


def gain(wav: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db` decibels, then limit peaks to 0.99."""
    y = wav * np.float32(10.0 ** (db / 20.0))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return (y * (0.99 / peak) if peak > 0.99 else y).astype(np.float32)


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator, color: float = 0.0) -> np.ndarray:
    """Add white (color 0) to pink-ish (color 1) noise at `snr_db` below the clip's RMS."""
    noise = rng.standard_normal(len(wav))
    if color > 0:
        spec = np.fft.rfft(noise)
        f = np.maximum(np.arange(len(spec)), 1.0)
        noise = np.fft.irfft(spec / f ** (0.5 * color), n=len(wav))
    rms = np.sqrt(np.mean(wav.astype(np.float64) ** 2)) + 1e-9
    noise *= rms / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10.0 ** (-snr_db / 20.0)
    return (wav + noise).astype(np.float32)


def reverb(wav: np.ndarray, rng: np.random.Generator, rt60: float = 0.3, wet: float = 0.3,
           sr: int = SAMPLE_RATE) -> np.ndarray:
    """A small room: convolve with exponentially decaying noise (rt60 seconds), mixed `wet`; same length."""
    from scipy.signal import fftconvolve

    n = max(1, int(min(rt60, 1.0) * sr))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[0] = 0.0
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    tail = fftconvolve(wav.astype(np.float64), ir)[: len(wav)]
    y = (1.0 - wet) * wav + wet * tail
    peak = np.max(np.abs(y)) if y.size else 0.0
    return (y * (0.99 / peak) if peak > 0.99 else y).astype(np.float32)
