"""A seeded melody generator: one note per sung syllable, spread over a voice's octave-and-a-half range.

    melody = make_melody(n_notes=12, low_midi=39, high_midi=57, tonic_midi=45, rng=np.random.default_rng(7))
    melody.midis, melody.seconds                      # MIDI note numbers and durations, one per syllable

A melody picks a key near the voice's tonic (major, natural minor or pentatonic), a phrase shape (arch, valley,
rise, fall or wave) stretched over 70-100 % of the range, and follows it on the scale with seeded wobble, steps
and an occasional repeated note; the last note falls on the tonic and is held. Tempo, note lengths, vibrato and
portamento vary per melody (`MelodySettings`). Everything comes from the caller's `numpy.random.Generator`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}
SHAPES = ("arch", "valley", "rise", "fall", "wave")


@dataclass(frozen=True)
class MelodySettings:
    """Ranges the generator draws from (uniformly unless said otherwise)."""

    bpm: tuple[float, float] = (84.0, 132.0)
    beats: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    beat_weights: tuple[float, ...] = (0.25, 0.45, 0.15, 0.15)
    final_beats: tuple[float, float] = (2.0, 3.0)
    vibrato_hz: tuple[float, float] = (4.8, 6.4)
    vibrato_cents: tuple[float, float] = (20.0, 50.0)
    glide_s: tuple[float, float] = (0.04, 0.11)  # portamento between notes
    key_offset: int = 2  # the key's tonic is within +- this of the voice's tonic
    coverage: tuple[float, float] = (0.7, 1.0)  # share of the range one phrase shape spans
    wobble_degrees: float = 0.8  # std of the scale-degree noise around the shape


@dataclass
class Melody:
    """One generated melody: `midis[k]` sung for `seconds[k]` on syllable k."""

    midis: list[int]
    seconds: list[float]
    tonic_midi: int
    scale: str
    shape: str
    bpm: float
    vibrato_hz: float
    vibrato_cents: float
    glide_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = [round(s, 4) for s in self.seconds]
        for key in ("bpm", "vibrato_hz", "vibrato_cents", "glide_s"):
            out[key] = round(out[key], 4)
        return out


def _shape(name: str, u: np.ndarray, phase: float) -> np.ndarray:
    """Phrase contour in [0, 1] at positions u in [0, 1]."""
    if name == "arch":
        return np.sin(np.pi * u)
    if name == "valley":
        return 1.0 - np.sin(np.pi * u)
    if name == "rise":
        return u
    if name == "fall":
        return 1.0 - u
    return 0.5 + 0.5 * np.sin(2.0 * np.pi * (1.5 * u + phase))


def scale_notes(low_midi: int, high_midi: int, tonic_midi: int, scale: str) -> list[int]:
    """MIDI notes of `scale` on `tonic_midi` within [low_midi, high_midi]."""
    degrees = set(SCALES[scale])
    return [m for m in range(low_midi, high_midi + 1) if (m - tonic_midi) % 12 in degrees]


def make_melody(n_notes: int, low_midi: int, high_midi: int, tonic_midi: int, rng: np.random.Generator,
                settings: MelodySettings = MelodySettings()) -> Melody:
    """A melody of `n_notes` notes inside [low_midi, high_midi] (see the module docstring)."""
    if n_notes < 1:
        raise ValueError("a melody needs at least one note")
    key = int(tonic_midi + rng.integers(-settings.key_offset, settings.key_offset + 1))
    scale = str(rng.choice(list(SCALES)))
    shape = str(rng.choice(SHAPES))
    pitches = np.array(scale_notes(low_midi, high_midi, key, scale))
    top = len(pitches) - 1
    cover = rng.uniform(*settings.coverage)
    start = rng.uniform(0.0, 1.0 - cover)
    u = np.linspace(0.0, 1.0, n_notes) if n_notes > 1 else np.zeros(1)
    target = (start + cover * _shape(shape, u, float(rng.uniform(0, 1)))) * top
    index = np.clip(np.round(target + rng.normal(0.0, settings.wobble_degrees, n_notes)), 0, top).astype(int)
    for k in range(1, n_notes):  # mostly avoid long runs of the same note: nudge a repeat one step
        if index[k] == index[k - 1] and rng.random() < 0.7:
            index[k] = index[k] + 1 if index[k] < top and (index[k] == 0 or rng.random() < 0.5) else index[k] - 1
    midis = [int(m) for m in pitches[index]]
    tonics = [m for m in pitches if (m - key) % 12 == 0]
    if tonics:  # cadence: end on the tonic nearest the last note
        midis[-1] = int(min(tonics, key=lambda m: abs(m - midis[-1])))
    bpm = float(rng.uniform(*settings.bpm))
    weights = np.asarray(settings.beat_weights) / np.sum(settings.beat_weights)
    beats = [float(b) for b in rng.choice(settings.beats, size=n_notes, p=weights)]
    beats[-1] = float(rng.uniform(*settings.final_beats))
    seconds = [b * 60.0 / bpm for b in beats]
    return Melody(midis, seconds, key, scale, shape, bpm, float(rng.uniform(*settings.vibrato_hz)),
                  float(rng.uniform(*settings.vibrato_cents)), float(rng.uniform(*settings.glide_s)))
