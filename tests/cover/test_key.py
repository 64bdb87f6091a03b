"""Key: the auto-transpose suggestion on known ranges, and the accompaniment's pitch shift measured on a tone."""
from __future__ import annotations

import numpy as np
import pytest

from cover.songs import SR, VOICE_MODEL
from svc_core.cover.key import (ASSUMED_RANGE_MIDI, hz_to_midi, shift_pitch, suggest_transpose, vocal_midi,
                                voice_range)
from svc_core.f0 import get_predictor


def tone(hz: float, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(2 * np.pi * 2 * hz * t)
    return np.stack([wave, 0.8 * wave]).astype(np.float32)


def median_hz(audio: np.ndarray) -> float:
    f0, uv = get_predictor("pm", hop_length=512, sampling_rate=SR).compute_f0_uv(audio.mean(axis=0))
    return float(np.median(f0[uv > 0.5][5:-5]))


def test_voice_range_comes_from_the_starter_manifest():
    assert voice_range(str(VOICE_MODEL), {"flite_slt": 1.0})[:2] == (44.0, 62.0)
    assert voice_range(str(VOICE_MODEL), {"flite_awb": 1.0})[:2] == (39.0, 57.0)
    low, high, source = voice_range(str(VOICE_MODEL), {"flite_slt": 0.5, "flite_rms": 0.5})
    assert (low, high) == (39.5, 57.5) and "manifest" in source
    for model, speakers in (("/nowhere/G_1.pth", {"x": 1.0}), (str(VOICE_MODEL), {"not_in_manifest": 1.0})):
        low, high, source = voice_range(model, speakers)
        assert (low, high) == ASSUMED_RANGE_MIDI and source.startswith("assumed")


@pytest.mark.parametrize("song_centre, voice, any_key, octaves", [
    (65.0, (44.0, 62.0), -12, -12),  # a high female vocal for the slt voice: an octave down either way
    (53.0, (44.0, 62.0), 0, 0),  # already centred
    (60.0, (44.0, 62.0), -7, -12),  # 7 down centres it; the nearest octave shift is -12 (5 below centre)
    (58.0, (44.0, 62.0), -5, 0),  # 5 down centres it; unshifted (5 above) beats an octave down (7 below)
    (45.0, (60.0, 76.0), 23, 24),  # a low male vocal for a high voice
])
def test_suggestion_on_known_ranges(song_centre, voice, any_key, octaves):
    rng = np.random.default_rng(0)
    song = song_centre + rng.uniform(-3, 3, 500)  # a melody spread around its centre
    free = suggest_transpose(song, *voice, "test range", shift_accompaniment=True)
    kept = suggest_transpose(song, *voice, "test range", shift_accompaniment=False)
    assert (free.any_key, free.octaves) == (any_key, octaves) == (kept.any_key, kept.octaves)
    assert free.semitones == any_key and kept.semitones == octaves
    assert f"{any_key:+d} semitones centre" in free.explanation and "test range" in free.explanation
    assert abs(free.song_median - song_centre) < 0.5 and free.song_low < free.song_median < free.song_high


def test_no_suggestion_without_voiced_frames():
    s = suggest_transpose(np.array([60.0, 61.0]), 44, 62, "r", True)
    assert s.semitones == 0 and "too few voiced frames" in s.explanation


def test_vocal_midi_of_a_tone():
    midi = vocal_midi(tone(220.0), SR)
    assert len(midi) > 100 and abs(np.median(midi) - 57.0) < 0.1  # A3
    assert abs(hz_to_midi(np.array([440.0]))[0] - 69) < 1e-9


@pytest.mark.parametrize("semitones", [3, -5])
def test_accompaniment_shift_is_measured_on_a_tone(semitones):
    x = tone(220.0)
    y = shift_pitch(x, SR, semitones)
    assert y.shape == x.shape and y.dtype == np.float32
    cents = 1200 * np.log2(median_hz(y) / (220.0 * 2 ** (semitones / 12)))
    assert abs(cents) < 10, cents
    # level kept (within 1.5 dB) and channel balance kept
    assert abs(20 * np.log10(np.abs(y).max() / np.abs(x).max())) < 1.5
    assert abs(np.std(y[1]) / np.std(y[0]) - 0.8) < 0.05
    assert shift_pitch(x, SR, 0) is not None and np.array_equal(shift_pitch(x, SR, 0), x)
