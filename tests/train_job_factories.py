"""Training-job datasets for the REST tests (tests/api/test_trainings*.py): zips of short sung clips laid out
<speaker>/<clip>.wav, and the tiny training options that keep a run to seconds."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import soundfile as sf

from audio_factories import sung_phrase

SR = 44100
SPEAKERS = ("alto", "bass")
CLIPS_PER_SPEAKER = 3
CLIP_SECONDS = 2.6  # preprocessing keeps clips of 2 s or more
TINY = {"model_size": "tiny", "batch_size": 2, "f0_predictor": "pm"}


def wav_bytes(seconds: float, seed: int) -> bytes:
    """A sung phrase without pauses (one clip for preprocessing) as wav bytes."""
    audio = sung_phrase(seconds, SR, gap_every=1000.0, seed=seed)
    buffer = io.BytesIO()
    sf.write(buffer, audio, SR, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def make_dataset(path: Path, members: dict[str, bytes] | None = None) -> Path:
    """A zip of SPEAKERS x CLIPS_PER_SPEAKER sung clips, or of `members` (name -> bytes)."""
    if members is None:
        members = {f"{spk}/clip{k}.wav": wav_bytes(CLIP_SECONDS, 10 * s + k)
                   for s, spk in enumerate(SPEAKERS) for k in range(CLIPS_PER_SPEAKER)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path
