"""Mixing effects for synthetic songs: synthetic room impulse responses, random EQ, panning and stereo width,
and rendering MIDI with the fluidsynth CLI. All arrays float32/float64 [C, N] at 44.1 kHz unless said otherwise."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

from ...errors import SvcError

SAMPLE_RATE = 44100
RT60_S = (0.15, 1.4)  # reverberation time range of the synthetic rooms
WET_DB = (-30.0, -6.0)  # reverberant part relative to the dry path (energy)
EQ_GAIN_DB = 6.0  # largest boost/cut of one EQ band
FLUIDSYNTH_GAIN = 0.4


def room_impulse(rng: np.random.Generator, channels: int = 2, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A stereo room response float64 [channels, L]: the direct path (1 at t=0), a few early reflections and
    an exponentially decaying, low-passed noise tail (decorrelated per channel) reaching -60 dB at RT60."""
    rt60 = float(rng.uniform(*RT60_S))
    length = int(rt60 * 1.1 * sr)
    t = np.arange(length) / sr
    envelope = 10.0 ** (-3.0 * t / rt60)  # -60 dB at rt60
    predelay = int(rng.uniform(0.005, 0.03) * sr)
    ir = np.zeros((channels, length))
    for c in range(channels):
        tail = rng.standard_normal(length) * envelope
        cutoff = rng.uniform(0.15, 0.6)  # one-pole low-pass coefficient: damped highs
        from scipy.signal import lfilter

        tail = lfilter([cutoff], [1.0, cutoff - 1.0], tail)
        tail[:predelay] = 0.0
        for _ in range(int(rng.integers(3, 8))):
            k = int(rng.uniform(0.002, 0.05) * sr)
            tail[k] += rng.uniform(-0.5, 0.5)
        tail *= np.sqrt(10.0 ** (rng.uniform(*WET_DB) / 10.0) / (np.sum(tail**2) + 1e-12))
        tail[0] += 1.0
        ir[c] = tail
    return ir


def reverberate(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """mono [N] through a [C, L] response -> [C, N] (tail cut at N)."""
    from scipy.signal import fftconvolve

    return np.stack([fftconvolve(x, h)[: len(x)] for h in ir])


def _biquad(kind: str, f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """RBJ-cookbook peaking / low-shelf / high-shelf section as one SOS row [6]."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * f0 / sr
    cw, alpha = np.cos(w0), np.sin(w0) / (2.0 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    else:
        sa = 2.0 * np.sqrt(a) * alpha
        sign = 1.0 if kind == "low" else -1.0
        b = [a * ((a + 1) - sign * (a - 1) * cw + sa), sign * 2 * a * ((a - 1) - sign * (a + 1) * cw),
             a * ((a + 1) - sign * (a - 1) * cw - sa)]
        den = [(a + 1) + sign * (a - 1) * cw + sa, -sign * 2 * ((a - 1) + sign * (a + 1) * cw),
               (a + 1) + sign * (a - 1) * cw - sa]
    return np.array(b + den) / den[0]


def random_eq(x: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """[C, N] through a random low shelf, high shelf and one or two peaks (each within +-EQ_GAIN_DB)."""
    from scipy.signal import sosfilt

    sections = [_biquad("low", rng.uniform(80, 300), rng.uniform(-EQ_GAIN_DB, EQ_GAIN_DB), 0.707, sr),
                _biquad("high", rng.uniform(3000, 10000), rng.uniform(-EQ_GAIN_DB, EQ_GAIN_DB), 0.707, sr)]
    for _ in range(int(rng.integers(1, 3))):
        sections.append(_biquad("peak", float(np.exp(rng.uniform(np.log(200), np.log(6000)))),
                                rng.uniform(-EQ_GAIN_DB, EQ_GAIN_DB), rng.uniform(0.5, 2.0), sr))
    return sosfilt(np.stack(sections), x, axis=-1)


def pan_gains(position: float) -> tuple[float, float]:
    """Constant-power (left, right) gains for position -1 (left) .. +1 (right)."""
    angle = (position + 1.0) * np.pi / 4.0
    return float(np.cos(angle) * np.sqrt(2.0)), float(np.sin(angle) * np.sqrt(2.0))


def set_width(x: np.ndarray, width: float) -> np.ndarray:
    """Stereo [2, N] with its side signal scaled by `width` (0 mono .. 1 unchanged .. >1 wider)."""
    mid, side = (x[0] + x[1]) / 2.0, (x[0] - x[1]) / 2.0 * width
    return np.stack([mid + side, mid - side])


def active_rms_db(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """RMS (dBFS) of [C, N] over the 10 ms frames within 40 dB of the loudest."""
    n = sr // 100
    mono = np.mean(x, axis=0)
    frames = mono[: len(mono) // n * n].reshape(-1, n)
    db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = db[db > db.max() - 40.0]
    return float(10.0 * np.log10(np.mean(10.0 ** (loud / 10.0)) + 1e-12))


def render_midi(smf: bytes, soundfont: str, seconds: float, reverb: bool, chorus: bool,
                sr: int = SAMPLE_RATE) -> np.ndarray:
    """fluidsynth renders a MIDI file -> float64 [2, round(seconds * sr)] (zero-padded or cut)."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise SvcError("'fluidsynth' was not found; install the Debian package 'fluidsynth' to generate mixtures.")
    with tempfile.TemporaryDirectory(prefix="sepmix_") as tmp:
        mid, wav = os.path.join(tmp, "a.mid"), os.path.join(tmp, "a.wav")
        with open(mid, "wb") as fh:
            fh.write(smf)
        argv = ["fluidsynth", "-n", "-i", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(sr), "-O", "float",
                "-T", "wav", "-R", "1" if reverb else "0", "-C", "1" if chorus else "0", "-F", wav, soundfont, mid]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(wav):
            raise SvcError(f"fluidsynth failed on {soundfont}: {(done.stderr or done.stdout).strip()[:300]}")
        y, rate = sf.read(wav, dtype="float64", always_2d=True)
    if rate != sr:
        raise SvcError(f"fluidsynth wrote {rate} Hz instead of {sr} Hz.")
    y = y.T
    n = int(round(seconds * sr))
    return np.pad(y, ((0, 0), (0, max(0, n - y.shape[1]))))[:, :n]
