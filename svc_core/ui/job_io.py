"""What a conversion job is asked (`ConvertRequest`) and what it answers (`JobUpdate`, `JobResult`), and the checks
and housekeeping around them that need no engine (the uploaded file, old result folders)."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..audio import AUDIO_SUFFIXES
from ..errors import AudioError
from ..options import ConvertOptions
from ..timing import StageTimes

RESULT_MAX_AGE_SECONDS = 6 * 3600  # result folders older than this are removed when a new job starts


@dataclass(frozen=True)
class ConvertRequest:
    """What the Convert tab (or an API client) asks for. Defaults and ranges are ConvertOptions' (one place)."""

    audio_path: str | None
    model: str
    speaker: str
    transpose: float = ConvertOptions.transpose
    f0_predictor: str = "auto"  # "auto" is resolved by resolve_f0 (rmvpe where usable, else fcpe)
    auto_f0: bool = ConvertOptions.auto_predict_f0
    cluster_ratio: float = ConvertOptions.cluster_ratio
    noise_scale: float = ConvertOptions.noise_scale
    slice_db: float = ConvertOptions.slice_db
    pad_seconds: float = ConvertOptions.pad_seconds
    clip_seconds: float = ConvertOptions.clip_seconds
    crossfade_seconds: float = ConvertOptions.crossfade_seconds
    loudness_mix: float = ConvertOptions.loudness_mix
    backend: str = "torch"  # "torch" (eager) or "onnx" (ONNX Runtime, see backends.py)
    vocoder_precision: str = ConvertOptions.vocoder_precision  # torch: fp32 / bf16 / fp16 where fast; ONNX: int8
    encoder_precision: str = ConvertOptions.encoder_precision  # a content encoder running in torch: fp32/bf16/fp16

    def options(self, f0_predictor: str = "rmvpe") -> ConvertOptions:
        """The request as checked engine options (OptionError names a value out of range, see options.RANGES)."""
        return ConvertOptions.from_kwargs(transpose=float(self.transpose), f0_predictor=f0_predictor,
                                          **self.engine_options())

    def engine_options(self) -> dict[str, Any]:
        """Keyword options for `Svc.slice_inference` (besides speaker/transpose/f0_predictor)."""
        return {"auto_predict_f0": bool(self.auto_f0), "cluster_ratio": float(self.cluster_ratio),
                "noise_scale": float(self.noise_scale), "slice_db": float(self.slice_db),
                "pad_seconds": float(self.pad_seconds), "clip_seconds": float(self.clip_seconds),
                "crossfade_seconds": float(self.crossfade_seconds), "loudness_mix": float(self.loudness_mix),
                "vocoder_precision": str(self.vocoder_precision or "fp32"),
                "encoder_precision": str(self.encoder_precision or "fp32")}


@dataclass
class JobResult:
    output_path: Path
    sample_rate: int
    times: StageTimes
    load_seconds: float | None  # None when the voice was already in memory
    f0_name: str
    encoder: str
    f0_plot: pd.DataFrame
    backend: str = ""  # which engine and execution provider ran (backends.describe)


@dataclass
class JobUpdate:
    """A snapshot of the job for the page: the whole log so far, progress, and the result or error at the end."""

    log: str
    fraction: float
    stage: str
    elapsed: float
    eta: float | None
    result: JobResult | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None


def resolve_f0(name: str) -> str:
    """'auto' -> rmvpe when usable, else fcpe; other names must be usable here (else an error saying why)."""
    from ..f0 import resolve_predictor

    return resolve_predictor(name)


def check_audio_file(path: str | None, max_bytes: int) -> Path:
    """The uploaded clip exists, has an audio extension and is not over the size limit (content checked later)."""
    if not path:
        raise AudioError("Upload or record a clip first (or pick one of the examples).")
    p = Path(path)
    if not p.is_file():
        raise AudioError("The uploaded clip is no longer on the server; upload it again.")
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(f"'{p.name}' is not an audio file we accept. Upload one of: "
                         f"{', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES)}.")
    size = p.stat().st_size
    if size > max_bytes:
        raise AudioError(f"'{p.name}' is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    return p


def prune_results(results_dir: Path, max_age: float = RESULT_MAX_AGE_SECONDS) -> None:
    if not results_dir.is_dir():
        return
    cutoff = time.time() - max_age
    for child in results_dir.iterdir():
        try:
            if child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            pass
