"""Data for the latent-map tests (tests/latent): a two-speaker set of sung phrases."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from audio_factories import sung_phrase

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
STARTER = ROOT / "voices" / "starter"
SPEAKERS = {"alto": 1.0, "bass": 0.5}  # speaker folder -> pitch factor of its phrases
CLIPS_PER_SPEAKER = 2
CLIP_SECONDS = 2.0
K_CLUSTERS = 8


def phrase(factor: float, seed: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """A sung phrase with its pitch scaled by `factor` (resampled), float32 at SR."""
    wav = sung_phrase(seconds / factor if factor < 1 else seconds, SR, gap_every=1.0, gap=0.3, seed=seed)
    if factor == 1.0:
        return wav
    idx = np.arange(0, len(wav) - 1, factor)
    return np.interp(idx, np.arange(len(wav)), wav).astype(np.float32)[: int(seconds * SR)]
