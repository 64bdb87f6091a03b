"""RVC's training pieces: each clip high-passed, cut into 3.7 s pieces with 0.3 s overlap, peak-normalised, and
written twice (model rate and 16 kHz), as RVC WebUI's preprocess step does (infer/modules/train/preprocess.py).

Numbers (RVC's): 5th-order Butterworth high-pass at 48 Hz run causally (lfilter); pieces of PIECE_SECONDS starting
every PIECE_SECONDS - OVERLAP_SECONDS; a stretch shorter than PIECE_SECONDS + OVERLAP_SECONDS is one last piece;
gain x -> x / peak * (PEAK_TARGET * BLEND) + (1 - BLEND) * x; pieces peaking above MAX_INPUT_PEAK are dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from ...audio import resample
from ...constants import ENCODER_SAMPLE_RATE
from .layout import ExperimentLayout

HIGHPASS_ORDER = 5
HIGHPASS_HZ = 48.0
PIECE_SECONDS = 3.7
OVERLAP_SECONDS = 0.3
PEAK_TARGET = 0.9
BLEND = 0.75
MAX_INPUT_PEAK = 2.5  # RVC drops a piece whose peak is above this (a broken decode)
MIN_PIECE_SECONDS = 0.5  # shorter pieces are dropped (RVC keeps them; they hold less than a training segment)
SILENT_PEAK = 1e-4  # a piece whose peak is below this is silence: dropped (RVC would divide by ~0)


@dataclass(frozen=True)
class Clip:
    """One source clip: mono float32 audio at `sr`, its speaker id and a name stem for its pieces."""

    audio: np.ndarray
    sr: int
    sid: int
    stem: str  # no '.' (RVC matches files by name.split('.')[0])


@dataclass
class SliceResult:
    pieces: list[str]  # piece names written
    dropped: list[tuple[str, str]]  # (piece name, why)


def highpass(audio: np.ndarray, sr: int) -> np.ndarray:
    """RVC's causal 48 Hz high-pass (butter 5, lfilter) of float [N] -> float64 [N]."""
    b, a = signal.butter(N=HIGHPASS_ORDER, Wn=HIGHPASS_HZ, btype="high", fs=sr)
    return signal.lfilter(b, a, np.asarray(audio, dtype=np.float64))


def piece_bounds(n: int, sr: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges of RVC's pieces of an n-sample clip at rate sr."""
    step = PIECE_SECONDS - OVERLAP_SECONDS
    bounds = []
    i = 0
    while True:
        start = int(sr * step * i)
        i += 1
        if n - start > (PIECE_SECONDS + OVERLAP_SECONDS) * sr:
            bounds.append((start, start + int(PIECE_SECONDS * sr)))
        else:
            bounds.append((start, n))
            return bounds


def normalise_piece(piece: np.ndarray) -> np.ndarray | None:
    """RVC's peak blend, or None when the piece is silent or broken (peak out of range)."""
    peak = float(np.max(np.abs(piece))) if piece.size else 0.0
    if peak > MAX_INPUT_PEAK or peak < SILENT_PEAK:
        return None
    return piece / peak * (PEAK_TARGET * BLEND) + (1.0 - BLEND) * piece


def write_float_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """float32 wav (RVC writes its pieces as float32), via a temporary name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    sf.write(str(tmp), np.asarray(audio, dtype=np.float32), sr, subtype="FLOAT", format="WAV")
    os.replace(tmp, path)


def slice_clip(clip: Clip, layout: ExperimentLayout, model_sr: int) -> SliceResult:
    """Write the pieces of `clip` into layout's 0_gt_wavs (model_sr) and 1_16k_wavs; existing pieces are kept."""
    audio = resample(np.asarray(clip.audio, dtype=np.float32), clip.sr, model_sr)
    audio = highpass(audio, model_sr)
    result = SliceResult([], [])
    for k, (start, end) in enumerate(piece_bounds(audio.shape[0], model_sr)):
        name = f"{clip.stem}_{k}"
        if end - start < MIN_PIECE_SECONDS * model_sr:
            result.dropped.append((name, f"{(end - start) / model_sr:.2f} s is shorter than {MIN_PIECE_SECONDS} s"))
            continue
        files = layout.piece_files(name)
        if files["gt"].is_file() and files["16k"].is_file():
            result.pieces.append(name)
            continue
        piece = normalise_piece(audio[start:end])
        if piece is None:
            result.dropped.append((name, "silent, or its peak is out of range"))
            continue
        write_float_wav(files["gt"], piece, model_sr)
        write_float_wav(files["16k"], resample(piece.astype(np.float32), model_sr, ENCODER_SAMPLE_RATE),
                        ENCODER_SAMPLE_RATE)
        result.pieces.append(name)
    return result
