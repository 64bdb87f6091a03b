"""One source recording -> 44.1 kHz mono 16-bit clips: decode, resample, slice, normalise loudness, write.

Runs in worker processes, so the input and output are plain dataclasses of JSON-friendly values.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..audio import load_audio, resample
from ..constants import MODEL_SAMPLE_RATE
from ..errors import SvcError
from .discover import SourceFile
from .loudness import integrated_loudness, normalise
from .segments import plan_pieces
from .settings import PreprocessSettings

CLIP_LEVEL = 0.999  # |x| at or above this counts as a clipped sample
CLIP_RUN = 3  # ... when at least this many such samples are consecutive
SKIP_NORM_PEAK = 0.98  # with --skip-loudnorm, float sources peaking above 1 are scaled to this peak


@dataclass
class ClipInfo:
    """One written clip. Times in seconds of the source recording, levels in LUFS / dBFS."""

    clip: str  # '<speaker>/<name>.wav', relative to the output folder
    source: str  # source path relative to the input folder
    speaker: str
    start: float
    end: float
    samples: int  # at 44.1 kHz
    loudness_before: float | None  # None when the source is too quiet to measure (-inf)
    loudness_after: float | None
    gain_db: float
    peak_dbfs: float | None
    limited: bool  # the peak limiter acted
    clipped_samples: int  # clipped samples of the source inside this clip's range


@dataclass
class SourceResult:
    """What became of one source file."""

    source: str
    speaker: str
    size: int
    mtime_ns: int
    status: str  # "ok" or "skipped"
    reason: str = ""
    seconds: float = 0.0  # source duration
    sample_rate: int = 0
    channels: int = 0
    clips: list[ClipInfo] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)  # {start, end, reason} in seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "SourceResult":
        doc = dict(doc)
        doc["clips"] = [ClipInfo(**c) for c in doc.get("clips", [])]
        return cls(**doc)


def clipped_mask(wav: np.ndarray) -> np.ndarray:
    """bool [N]: samples inside runs of >= CLIP_RUN consecutive samples at |x| >= CLIP_LEVEL."""
    hot = np.abs(wav) >= CLIP_LEVEL
    if not hot.any():
        return hot
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    mask = np.zeros_like(hot)
    for a, b in zip(starts, stops):
        if b - a >= CLIP_RUN:
            mask[a:b] = True
    return mask


def _finite(x: float) -> float | None:
    return round(x, 3) if math.isfinite(x) else None


def write_clip(path: Path, wav: np.ndarray, sr: int) -> None:
    """16-bit PCM wav, written to a temporary name first so an interrupted run never leaves half a clip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _channels(path: Path) -> int:
    try:
        return int(sf.info(str(path)).channels)
    except Exception:  # decoded by the librosa fallback; the count is only informative
        return 0


def cut_source(src: SourceFile, settings: PreprocessSettings) -> SourceResult:
    """Cut `src` into clips under settings.output_dir/<speaker>/. Bad audio gives status "skipped" + reason."""
    stat = src.path.stat()
    result = SourceResult(src.rel, src.speaker, stat.st_size, stat.st_mtime_ns, "ok")
    try:
        with warnings.catch_warnings():  # decoder fallbacks warn; a failure ends up in the report instead
            warnings.simplefilter("ignore")
            wav, sr = load_audio(src.path, max_seconds=settings.max_source_seconds)
    except SvcError as err:
        result.status, result.reason = "skipped", str(err)
        return result
    except Exception as err:  # a decoder crash on a strange file must not stop the whole run
        result.status, result.reason = "skipped", f"could not decode it ({type(err).__name__}: {err})"
        return result
    result.seconds, result.sample_rate, result.channels = wav.shape[0] / sr, sr, _channels(src.path)
    clipped = clipped_mask(wav)
    audio = resample(wav, sr, MODEL_SAMPLE_RATE)
    pieces, dropped = plan_pieces(audio, MODEL_SAMPLE_RATE, settings.min_seconds, settings.max_seconds,
                                  settings.slice_db)
    result.dropped = [{"start": round(d.start / MODEL_SAMPLE_RATE, 3), "end": round(d.end / MODEL_SAMPLE_RATE, 3),
                       "reason": d.reason} for d in dropped]
    for k, piece in enumerate(pieces):
        segment = audio[piece.start:piece.end]
        if settings.loudnorm:
            out, res = normalise(segment, MODEL_SAMPLE_RATE, settings.target_lufs, settings.peak_dbfs)
            before, after, gain, peak, limited = (res.before_lufs, res.after_lufs, res.gain_db, res.peak_dbfs,
                                                  res.limited)
        else:
            peak_lin = float(np.max(np.abs(segment)))
            scale = SKIP_NORM_PEAK / peak_lin if peak_lin > 1.0 else 1.0
            out = segment * np.float32(scale)
            before = integrated_loudness(segment, MODEL_SAMPLE_RATE)
            gain, limited = 20.0 * math.log10(scale), False
            after = before + gain
            peak = 20.0 * math.log10(max(peak_lin * scale, 1e-12))
        name = f"{src.stem}_{k:03d}.wav"
        write_clip(settings.output_dir / src.speaker / name, out, MODEL_SAMPLE_RATE)
        lo, hi = piece.start * sr // MODEL_SAMPLE_RATE, piece.end * sr // MODEL_SAMPLE_RATE
        result.clips.append(ClipInfo(
            clip=f"{src.speaker}/{name}", source=src.rel, speaker=src.speaker,
            start=round(piece.start / MODEL_SAMPLE_RATE, 3), end=round(piece.end / MODEL_SAMPLE_RATE, 3),
            samples=piece.length, loudness_before=_finite(before), loudness_after=_finite(after),
            gain_db=round(gain, 3), peak_dbfs=_finite(peak), limited=limited,
            clipped_samples=int(clipped[lo:hi].sum()),
        ))
    if not pieces:
        result.status = "skipped"
        longest = max((d.end - d.start for d in dropped), default=0) / MODEL_SAMPLE_RATE
        result.reason = (f"no usable clip: no stretch of sound above {settings.slice_db:g} dBFS lasts "
                         f"{settings.min_seconds:g} s (longest {longest:.2f} s); silent or too short")
    return result
