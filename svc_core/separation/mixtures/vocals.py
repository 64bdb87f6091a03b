"""Vocal lines for synthetic songs: TTS voices singing a sentence on a seeded melody, at 44.1 kHz mono.

* flite / festival voices sing phone-aligned (`phonevec.singing.sing_phrase`: one note per vowel);
* espeak-ng voices have no phone timings here: their speech is slowed by 1.2-1.7x and its voiced frames are
  re-pitched onto the melody's notes in order (WORLD); sometimes a phrase stays plain speech (rap-like).
Every choice comes from the caller's `numpy.random.Generator`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from ...errors import SvcError
from .splits import VocalVoice

SAMPLE_RATE = 44100
SPAN_SEMITONES = 18  # a voice sings from tonic - 6 over an octave and a half
BELOW_TONIC = 6
SPEECH_P = 0.12  # share of espeak phrases left as plain speech
FRAME_MS = 5.0


@dataclass
class VocalPhrase:
    """`audio` float32 [N] at 44.1 kHz; `notes` [(start_s, length_s, midi)] relative to the phrase start."""

    audio: np.ndarray
    notes: list[tuple[float, float, int]]
    style: str  # "sing", "repitch" or "speech"
    scale: str
    tonic_midi: int


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise SvcError(f"'{tool}' was not found; install the Debian package '{package}' to generate mixtures.")


def _to_rate(x: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return (x if sr == SAMPLE_RATE else soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")).astype(np.float64)


def _melody(n_notes: int, voice: VocalVoice, key_midi: int, bpm: float, rng: np.random.Generator):
    from ...starter.melody import MelodySettings, make_melody

    low = voice.tonic_midi - BELOW_TONIC
    settings = MelodySettings(bpm=(bpm, bpm), key_offset=0)
    return make_melody(max(1, n_notes), low, low + SPAN_SEMITONES, key_midi, rng, settings)


def _sing_aligned(voice: VocalVoice, text: str, key_midi: int, bpm: float, rng: np.random.Generator,
                  workdir: str) -> VocalPhrase:
    from ...phonevec.singing import count_vowels, festival_with_phones, flite_with_phones, sing_phrase

    if voice.engine == "flite":
        _need("flite", "flite")
        x, sr, phones = flite_with_phones(voice.name, text, workdir)
    else:
        _need("festival", "festival")
        x, sr, phones = festival_with_phones(voice.name, text, workdir)
    melody = _melody(count_vowels(phones), voice, key_midi, bpm, rng)
    phrase = sing_phrase(x, sr, phones, melody.seconds, melody.midis, seed=int(rng.integers(1 << 30)),
                         vibrato_hz=melody.vibrato_hz, vibrato_cents=melody.vibrato_cents, glide_s=melody.glide_s)
    notes = [(s, d, m) for (s, _), d, m in zip(phrase.spans, melody.seconds, melody.midis)]
    return VocalPhrase(_to_rate(phrase.audio, phrase.sr), notes, "sing", melody.scale, melody.tonic_midi)


def _espeak(voice: VocalVoice, text: str, workdir: str, speed_wpm: int) -> tuple[np.ndarray, int]:
    from ...phonevec.singing import read_audio

    _need("espeak-ng", "espeak-ng")
    wav = os.path.join(workdir, "espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice.name, "-s", str(speed_wpm), "-w", wav, text], check=True,
                   capture_output=True)
    return read_audio(wav)


def _repitch(voice: VocalVoice, text: str, key_midi: int, bpm: float, rng: np.random.Generator,
             workdir: str) -> VocalPhrase:
    """espeak speech, slowed, with its voiced frames carrying the melody's notes in order (WORLD)."""
    from ...f0.classic import load_pyworld
    from ...phonevec.singing import melody_contour, midi_to_hz

    speech = rng.random() < SPEECH_P
    x, sr = _espeak(voice, text, workdir, int(rng.integers(120, 175)))
    if speech:
        return VocalPhrase(_to_rate(x, sr), [], "speech", "major", key_midi)
    pw = load_pyworld()
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.harvest(x, sr, f0_floor=60.0, f0_ceil=600.0, frame_period=FRAME_MS)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    stretch = float(rng.uniform(1.2, 1.7))
    n_out = int(len(f0) * stretch)
    src = np.minimum(np.arange(n_out) / stretch, len(f0) - 1).astype(int)
    f0s, sps, aps = f0[src], sp[src], ap[src]
    voiced = f0s > 0
    frame_s = FRAME_MS / 1000.0
    runs = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(int)])) == 1)  # starts of voiced runs
    if len(runs) == 0:
        return VocalPhrase(_to_rate(x, sr), [], "speech", "major", key_midi)
    melody = _melody(len(runs), voice, key_midi, bpm, rng)
    times = np.arange(n_out) * frame_s
    starts = runs * frame_s
    ends = np.append(starts[1:], n_out * frame_s)
    notes_abs = [(float(s), float(e), m) for s, e, m in zip(starts, ends, melody.midis)]
    contour = melody_contour(times, notes_abs, int(rng.integers(1 << 30)), melody.vibrato_hz,
                             melody.vibrato_cents, melody.glide_s)
    y = pw.synthesize(np.where(voiced, midi_to_hz(contour), 0.0), np.ascontiguousarray(sps),
                      np.ascontiguousarray(aps), sr, FRAME_MS)
    notes = [(s, e - s, m) for s, e, m in notes_abs]
    return VocalPhrase(_to_rate(y, sr), notes, "repitch", melody.scale, melody.tonic_midi)


def vocal_phrase(voice: VocalVoice, text: str, key_midi: int, bpm: float, rng: np.random.Generator) -> VocalPhrase:
    """One sung (or spoken) phrase of `text` by `voice` in the key of `key_midi` at `bpm`, level -20 dBFS."""
    from ...phonevec.voices import set_level

    with tempfile.TemporaryDirectory(prefix="sepmix_") as workdir:
        if voice.engine in ("flite", "festival"):
            phrase = _sing_aligned(voice, text, key_midi, bpm, rng, workdir)
        else:
            phrase = _repitch(voice, text, key_midi, bpm, rng, workdir)
    phrase.audio = set_level(phrase.audio, SAMPLE_RATE).astype(np.float32)
    return phrase
