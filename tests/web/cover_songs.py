"""Songs and a cover context for the Cover tab's tests: a short stereo song (the sung test phrase over a chord pad
and bass), and a CoverContext on the shipped WORLD starter voice (no server)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audio_factories import sung_phrase

SR = 44100
SEPARATOR = "hpss"  # a DSP baseline: no weights, a few seconds for a short song
VOICE, SPEAKER = "starter", "flite_slt"


def song(seconds: float = 2.0, channels: int = 2, seed: int = 0) -> np.ndarray:
    """float32 [N, channels]: the sung phrase over a pad (A2, E3 with harmonics) and a 55 Hz bass, panned."""
    vocal = sung_phrase(seconds, gap_every=1.0, gap=0.3, seed=seed)
    t = np.arange(len(vocal)) / SR
    pad = sum(0.04 * np.sin(2 * np.pi * f * k * t) / k for f in (110.0, 165.0) for k in (1, 2, 3))
    bass = 0.06 * np.sin(2 * np.pi * 55.0 * t)
    left, right = 0.9 * vocal + pad + bass, 0.7 * vocal + 0.6 * pad + bass
    out = np.stack([left, right] + [0.5 * (left + right)] * (channels - 2), axis=1) if channels >= 2 else (
        (left + right)[:, None] / 2)
    return out.astype(np.float32)


def write_song(path: Path, seconds: float = 2.0, channels: int = 2, seed: int = 0, gain: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), gain * song(seconds, channels, seed), SR, subtype="PCM_16")
    return path


def cover_context(root: Path, max_audio_seconds: float = 30 * 60, max_file_size: int = 50 * 2**20, **limits):
    """A CoverContext on the starter voice with a results folder under `root` (limits: JobLimits fields)."""
    from svc_core.ui.cover_job import CoverContext
    from svc_core.ui.jobs import JobContext
    from svc_core.ui.limits import JobLimits
    from svc_core.ui.models import ModelLibrary
    from svc_core.ui.settings import STARTER_VOICES
    from svc_core.ui.voice_cache import VoiceCache

    (root / "models").mkdir(parents=True, exist_ok=True)
    library = ModelLibrary(root / "models", root / "uploads", shipped=(STARTER_VOICES,))
    jobs = JobContext(library, VoiceCache(1), root / "results", max_file_size, max_audio_seconds=max_audio_seconds,
                      limits=JobLimits(**limits))
    return CoverContext(jobs, separation_dir=root / "separation_models")


def cover_request(song_path, separator: str = SEPARATOR, **extra):
    """A CoverJobRequest for the starter voice (f0: pm, fast and weightless)."""
    from svc_core.ui.cover_job import CoverJobRequest
    from svc_core.ui.job_io import ConvertRequest

    voice = ConvertRequest(None, VOICE, extra.pop("speaker", SPEAKER), f0_predictor="pm")
    return CoverJobRequest(None if song_path is None else str(song_path), voice, separator, **extra)


def run_job(request, context, client: str = "local"):
    """Every CoverUpdate of one job, in order."""
    from svc_core.ui.cover_job import CoverJob

    return list(CoverJob(request, context, client).run())
