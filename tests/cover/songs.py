"""A synthetic song with known stems for the cover tests, and a Separator that returns those stems (so the cover
tests measure the pipeline, not separation quality)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from svc_core.separation.base import ACCOMPANIMENT, VOCALS, Separator

REPO = Path(__file__).resolve().parents[2]
MAIN = Path("/work/main")
SR = 44100
VOICE_DIR = next(p for p in (REPO / "voices" / "starter", MAIN / "voices" / "starter") if (p / "W_5000.pth").is_file())
VOICE_MODEL = VOICE_DIR / "W_5000.pth"
VOICE_CONFIG = VOICE_DIR / "config.json"
SUNG = REPO / "examples" / "singing_slt.flac"  # a sung melody (TTS singing, flite slt), 6.6 s mono


def accompaniment(n: int, sr: int = SR, seed: int = 3) -> np.ndarray:
    """float32 [2, n]: a two-chord pad (sines with harmonics), a bass note and a noise hi-hat, panned apart."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    half = n // 2
    out = np.zeros((2, n), np.float64)
    for start, stop, notes in ((0, half, (48, 52, 55)), (half, n, (45, 48, 52))):
        for i, midi in enumerate(notes):
            f = 440.0 * 2 ** ((midi - 69) / 12)
            tone = sum(np.sin(2 * np.pi * f * k * t[start:stop]) / k for k in (1, 2, 3))
            out[i % 2, start:stop] += 0.05 * tone
            out[(i + 1) % 2, start:stop] += 0.02 * tone
    bass = 0.08 * np.sin(2 * np.pi * 55.0 * t)
    out += bass
    hat = np.zeros(n)
    for beat in range(0, n, sr // 4):
        length = min(2000, n - beat)
        hat[beat:beat + length] += rng.standard_normal(length) * np.exp(-np.arange(length) / 300) * 0.05
    out[0] += hat
    out[1] += 0.5 * hat
    return out.astype(np.float32)


def synthetic_song(path: Path) -> dict[str, np.ndarray]:
    """Write a stereo wav song (the sung example over the accompaniment) -> its stems {vocals, accompaniment,
    mixture} float32 [2, N]."""
    voice, sr = sf.read(str(SUNG), dtype="float32")
    assert sr == SR
    voice = voice * (0.3 / np.abs(voice).max())
    vocals = np.stack([0.9 * voice, 0.7 * voice]).astype(np.float32)  # panned a little left
    accomp = accompaniment(vocals.shape[1])
    mixture = vocals + accomp
    sf.write(str(path), mixture.T, SR, subtype="FLOAT")
    return {VOCALS: vocals, ACCOMPANIMENT: accomp, "mixture": mixture}


class KnownStems(Separator):
    """Returns the stems it is given (class attribute `known`: {vocals, accompaniment} [2, N]) for a song that is
    their sum; one chunk covers the whole song."""

    name = "known"
    chunk_seconds = 3600.0
    known: dict[str, np.ndarray] = {}

    def __init__(self, model_path=None, **options) -> None:
        self.model_path = model_path

    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        vocals, accomp = self.known[VOCALS], self.known[ACCOMPANIMENT]
        assert audio.shape == vocals.shape, (audio.shape, vocals.shape)
        assert np.allclose(audio, vocals + accomp, atol=1e-5), "not the synthetic song"
        return {VOCALS: vocals.copy(), ACCOMPANIMENT: accomp.copy()}


class SplitHalves(Separator):
    """A second-pass separator for the tests: "vocals" is `share` of its input, "accompaniment" the rest (a lead /
    backing or dry / reverb split whose answer is known)."""

    name = "halves"
    chunk_seconds = 3600.0
    share = 0.75

    def __init__(self, model_path=None, **options) -> None:
        self.model_path = model_path

    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        return {VOCALS: self.share * audio, ACCOMPANIMENT: (1 - self.share) * audio}
