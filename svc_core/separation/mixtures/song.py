"""One synthetic song clip: TTS vocal phrases over a seeded MIDI accompaniment, mixed like a record.

    song = make_song("train", index=17, seconds=8.0)
    song.mixture, song.vocals, song.accompaniment   # float32 [2, N] at 44.1 kHz; mixture == vocals + accompaniment
    song.meta                                        # voice, soundfont, programs, melody seed, vocal level, ...

Everything random comes from `numpy.random.default_rng([split seed, index])`, so a clip depends only on
(split, index, seconds) and on the installed engines and soundfonts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .effects import SAMPLE_RATE, active_rms_db, pan_gains, random_eq, render_midi, reverberate, room_impulse, \
    set_width
from .midi import AccompanimentPlan, ProgramChoice, make_arrangement
from .splits import DRUM_KITS, SENTENCE_SEEDS, TEST_SEED, TRAIN_SEED, VOICES, check_split, programs_for, \
    soundfonts_for
from .vocals import vocal_phrase

VOCAL_RATIO_DB = (-10.0, 6.0)  # vocal-to-accompaniment level (active RMS)
PEAK_DBFS = (-6.0, -1.0)  # the mixture's peak after the master gain
SENTENCES_PER_SPLIT = 2000
DOUBLING_P = 0.3  # share of songs where an instrument doubles the sung line
GAP_S = (0.15, 0.9)  # silence between phrases
FIRST_ENTRY_S = (0.0, 2.0)  # when the first phrase starts


@dataclass
class Song:
    """A clip's stems, each float32 [2, N] at `sample_rate`; `mixture` is exactly vocals + accompaniment."""

    mixture: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray
    sample_rate: int
    meta: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=2)
def _sentences(split: str) -> tuple[str, ...]:
    from ...phonevec.sentences import generate_sentences

    return tuple(generate_sentences(SENTENCES_PER_SPLIT, seed=SENTENCE_SEEDS[split]))


def song_rng(split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([TRAIN_SEED if check_split(split) == "train" else TEST_SEED, int(index)])


def _vocal_track(split: str, rng: np.random.Generator, seconds: float, key_midi: int, bpm: float, voice):
    """Phrases laid end to end (with gaps) until the clip is full -> (mono float64 [N], notes, phrase info)."""
    n = int(round(seconds * SAMPLE_RATE))
    track = np.zeros(n)
    notes: list[tuple[float, float, int]] = []
    styles, texts = [], []
    sentences = _sentences(split)
    t = float(rng.uniform(*FIRST_ENTRY_S))
    scale = None
    while t < seconds - 0.5:
        text = sentences[int(rng.integers(len(sentences)))]
        phrase = vocal_phrase(voice, text, key_midi, bpm, rng)
        scale = scale or (phrase.scale if phrase.style != "speech" else None)
        start = int(round(t * SAMPLE_RATE))
        piece = phrase.audio[: n - start]
        track[start:start + len(piece)] += piece
        notes += [(t + s, d, m) for s, d, m in phrase.notes]
        styles.append(phrase.style)
        texts.append(text)
        t += len(phrase.audio) / SAMPLE_RATE + float(rng.uniform(*GAP_S))
    return track, notes, {"styles": styles, "texts": texts, "scale": scale or "major"}


def make_song(split: str, index: int, seconds: float = 8.0) -> Song:
    """Clip `index` of `split` (see the module docstring)."""
    rng = song_rng(split, index)
    voice = VOICES[split][int(rng.integers(len(VOICES[split])))]
    key_midi = voice.tonic_midi + int(rng.integers(-3, 4))
    bpm = float(rng.uniform(80.0, 140.0))
    melody_seed = int(rng.integers(1 << 31))
    vocal_rng = np.random.default_rng(melody_seed)
    dry, notes, info = _vocal_track(split, vocal_rng, seconds, key_midi, bpm, voice)

    programs = ProgramChoice(*(int(rng.choice(programs_for(split, part)))
                               for part in ("chords", "bass", "counter", "doubling")),
                             drum_kit=int(rng.choice(DRUM_KITS[split])))
    soundfonts = soundfonts_for(split)
    soundfont = soundfonts[int(rng.integers(len(soundfonts)))]
    plan = AccompanimentPlan(key_midi, info["scale"], bpm, seconds, programs, notes, rng.random() < DOUBLING_P)
    arrangement = make_arrangement(plan, rng)
    accompaniment = render_midi(arrangement.to_smf(), soundfont, seconds, reverb=rng.random() < 0.6,
                                chorus=rng.random() < 0.3)
    accompaniment = set_width(random_eq(accompaniment, rng), float(rng.uniform(0.5, 1.4)))

    pan = float(rng.uniform(-0.3, 0.3))
    left, right = pan_gains(pan)
    vocals = reverberate(dry, room_impulse(rng)) * np.array([[left], [right]])
    vocals = random_eq(vocals, rng)

    ratio_db = float(rng.uniform(*VOCAL_RATIO_DB))
    gain = 10.0 ** ((ratio_db + active_rms_db(accompaniment) - active_rms_db(vocals)) / 20.0)
    vocals = vocals * gain
    peak = np.max(np.abs(vocals + accompaniment)) + 1e-12
    master = 10.0 ** (float(rng.uniform(*PEAK_DBFS)) / 20.0) / peak
    vocals = (vocals * master).astype(np.float32)
    accompaniment = (accompaniment * master).astype(np.float32)
    meta = {"split": split, "index": int(index), "seconds": seconds, "voice": voice.id, "voice_engine": voice.engine,
            "soundfont": soundfont.rsplit("/", 1)[-1], "programs": arrangement.describe(), "melody_seed": melody_seed,
            "key_midi": key_midi, "scale": info["scale"], "bpm": round(bpm, 2), "vocal_level_db": round(ratio_db, 2),
            "vocal_pan": round(pan, 3), "doubling": plan.double_melody, "phrase_styles": info["styles"],
            "texts": info["texts"]}
    return Song(vocals + accompaniment, vocals, accompaniment, SAMPLE_RATE, meta)
