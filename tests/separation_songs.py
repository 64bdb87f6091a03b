"""Synthetic songs for separation tests and benches: a looped backing track (chords, bass, drums; it repeats every
LOOP_BARS bars, which is what REPET-SIM models) under a harmonic "voice" that does not repeat."""
from __future__ import annotations

import numpy as np

BEAT_SECONDS = 0.5  # 120 bpm
BEATS_PER_BAR = 4
LOOP_BARS = 4  # the backing repeats every 4 bars (8 s)
PROGRESSIONS = ((0, 5, 7, 3), (0, 9, 5, 7), (0, 7, 9, 5), (0, 3, 8, 10))  # chord roots, semitones above the key
KEY_MIDI = (48, 50, 52, 53, 55, 57)  # C3..A3: the key of a track, picked by its seed


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _tone(hz: float, n: int, sr: int, harmonics: int, tilt: float, detune: float = 0.0) -> np.ndarray:
    t = np.arange(n) / sr
    phase = 2 * np.pi * hz * (1 + detune) * t
    return sum(np.sin(k * phase) / k ** tilt for k in range(1, harmonics + 1))


def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(t / attack, 1.0) * np.exp(-t / decay)


PARTS = ("chords", "bass", "drums")


def backing_track(seconds: float, sr: int = 44100, seed: int = 0, parts: tuple[str, ...] = PARTS,
                  bars: int = LOOP_BARS) -> np.ndarray:
    """float32 [2, seconds * sr]: a 120 bpm loop of `bars` bars (a minor/major chord per bar, a bass line in
    eighths, kick / snare / hi-hat; `parts` picks which), peak 0.5. The loop is rendered once and tiled, so it
    repeats exactly."""
    rng = np.random.default_rng(seed)
    key = KEY_MIDI[seed % len(KEY_MIDI)]
    roots = PROGRESSIONS[seed % len(PROGRESSIONS)]
    bar = int(BEAT_SECONDS * BEATS_PER_BAR * sr)
    beat = int(BEAT_SECONDS * sr)
    loop = np.zeros((2, bar * bars))
    noise = rng.standard_normal(beat)
    for b, root in enumerate(roots[:bars]):
        start = b * bar
        third = 3 if rng.random() < 0.5 else 4
        for i, step in enumerate((0, third, 7) if "chords" in parts else ()):
            note = key + root + step
            for ch, det in enumerate((-0.002, 0.002)):  # a slightly detuned pad per side: stereo width
                pad = _tone(_midi_hz(note), bar, sr, 6, 1.5, det) * _envelope(bar, sr, 0.05, 1.5)
                loop[ch, start:start + bar] += 0.12 * pad
        for e in range(BEATS_PER_BAR * 2 if "bass" in parts else 0):  # bass: eighth notes on the root, octave jumps
            n8 = beat // 2
            s = start + e * n8
            note = key + root - 12 + (12 if e % 4 == 3 else 0)
            loop[:, s:s + n8] += 0.18 * _tone(_midi_hz(note), n8, sr, 4, 2.0) * _envelope(n8, sr, 0.005, 0.12)
        for k in range(BEATS_PER_BAR if "drums" in parts else 0):
            s = start + k * beat
            t = np.arange(beat) / sr
            if k % 2 == 0:  # kick
                kick = np.sin(2 * np.pi * np.cumsum(45 + 80 * np.exp(-t / 0.03)) / sr) * np.exp(-t / 0.12)
                loop[:, s:s + beat] += 0.5 * kick
            else:  # snare: noise burst with a body
                snare = (0.6 * noise + np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.07)
                loop[:, s:s + beat] += 0.25 * snare
            for h in (0, beat // 2):  # hi-hat: a short bright noise, panned right
                n_h = beat // 4
                hat = np.diff(noise[:n_h + 1]) * np.exp(-np.arange(n_h) / sr / 0.02)
                loop[0, s + h:s + h + n_h] += 0.04 * hat
                loop[1, s + h:s + h + n_h] += 0.09 * hat
    n = int(seconds * sr)
    track = np.tile(loop, (1, n // loop.shape[1] + 1))[:, :n]
    return (0.5 * track / np.max(np.abs(track))).astype(np.float32)


def sung_line(seconds: float, sr: int = 44100, seed: int = 0) -> np.ndarray:
    """float32 [seconds * sr]: a melody that does not repeat (seeded random notes of 0.25-0.9 s from a major scale
    around A3, 5.5 Hz vibrato, 12 harmonics under a moving formant, rests between phrases), peak 0.5."""
    rng = np.random.default_rng(1000 + seed)
    n = int(seconds * sr)
    f0 = np.zeros(n)
    t = 0
    while t < n:
        if rng.random() < 0.15:  # a rest
            t += int(rng.uniform(0.3, 0.8) * sr)
            continue
        d = int(rng.uniform(0.25, 0.9) * sr)
        note = 57 + rng.choice((-5, -3, -1, 0, 2, 4, 5, 7, 9, 12))
        f0[t:t + d] = _midi_hz(note)
        t += d
    voiced = f0 > 0
    time = np.arange(n) / sr
    f0 = np.where(voiced, f0 * 2 ** (0.4 / 12 * np.sin(2 * np.pi * 5.5 * time)), 0.0)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formant = 700 + 400 * np.sin(2 * np.pi * 0.7 * time + rng.uniform(0, 6))  # Hz: a vowel that moves
    wav = sum(np.sin(k * phase) * np.exp(-((k * f0 - formant) / 500) ** 2) / k ** 0.5 for k in range(1, 13))
    ramp = np.convolve(voiced.astype(float), np.ones(441) / 441, mode="same")  # 10 ms fades at note edges
    wav = wav * ramp
    return (0.5 * wav / max(np.max(np.abs(wav)), 1e-9)).astype(np.float32)


def synthetic_song(seconds: float, sr: int = 44100, seed: int = 0, vocal_db: float = 0.0,
                   parts: tuple[str, ...] = PARTS, bars: int = LOOP_BARS) -> tuple[np.ndarray, np.ndarray]:
    """(vocals, accompaniment), float32 [2, seconds * sr] each: sung_line (slightly left of centre) over
    backing_track, the vocal's RMS `vocal_db` dB against the backing's."""
    accompaniment = backing_track(seconds, sr, seed, parts, bars)
    voice = sung_line(seconds, sr, seed)
    gain = 10 ** (vocal_db / 20) * np.sqrt(np.mean(accompaniment ** 2) / max(np.mean(voice ** 2), 1e-12))
    vocals = np.stack([1.1 * voice, 0.9 * voice]) * gain
    return vocals.astype(np.float32), accompaniment
