"""Make a TTS voice sing: engine phone timings + WORLD (pyworld) re-timing and re-pitching onto a melody.

    x, sr, phones = flite_with_phones("slt", "Sing me a song", workdir)     # or festival_with_phones(...)
    phrase = sing_phrase(x, sr, phones, note_seconds=[0.5, 0.5, 0.5, 1.0], note_midis=[53, 55, 57, 53], seed=1)
    phrase.audio, phrase.spans                                             # engine rate; (start, vowel_end) per note

Every vowel of the phone sequence (CMU phone set of flite and festival) carries one note: it starts exactly on
its note and is stretched to fill it; the consonants after it keep their natural length at the end of the note
(squeezed to at most 45 % of it). The speech pitch is replaced by the melody with portamento, vibrato and a small
seeded drift; unvoiced phones stay unvoiced and pauses are silent. Shared by `examples/make_examples.py` (the demo's
sung clips) and `svc_core.starter` (the starter voices' singing corpus); deterministic for a given seed.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FRAME_MS = 5.0  # WORLD frame period
LEAD_SILENCE_S = 0.25  # silence before the first phone of a sung phrase
TAIL_SILENCE_S = 0.35  # silence after its last note

# CMU phone set used by flite and festival.
VOWELS = frozenset("aa ae ah ao aw ax axr ay eh er ey ih ix iy ow oy uh uw".split())
VOICED_CONSONANTS = frozenset("b d dh g jh l m n ng r v w y z zh dx el em en".split())

Phone = tuple[str, float, float]  # (name, start_s, end_s)


@dataclass
class SungPhrase:
    """`audio` at the engine's rate; `spans` [(note start, vowel end)] in seconds; `midis` per note."""

    audio: np.ndarray
    sr: int
    spans: list[tuple[float, float]]
    midis: list[float]


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """(float64 mono samples, rate) of an audio file."""
    import soundfile as sf

    x, sr = sf.read(path, dtype="float64", always_2d=True)
    return x.mean(axis=1), sr


def flite_with_phones(voice: str, text: str, workdir: str) -> tuple[np.ndarray, int, list[Phone]]:
    """Speak text with a flite voice: (audio, rate, [(phone, start_s, end_s), ...]) from `flite -psdur`."""
    wav = os.path.join(workdir, f"flite_{voice}.wav")
    out = subprocess.run(["flite", "-voice", voice, "-psdur", "-t", text, "-o", wav],
                         capture_output=True, text=True, check=True).stdout
    phones, start = [], 0.0
    for token in out.split():
        name, end = token.rsplit(":", 1)
        phones.append((name, start, float(end)))
        start = float(end)
    x, sr = read_audio(wav)
    return x, sr, phones


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_with_phones(voice: str, text: str, workdir: str) -> tuple[np.ndarray, int, list[Phone]]:
    """Speak text with a festival voice (e.g. 'ked_diphone'): (audio, rate, phones) from the utterance's
    Segment relation (`utt.save.segs`: one 'end_time 100 phone' line per segment)."""
    wav = os.path.join(workdir, f"festival_{voice}.wav")
    segs = os.path.join(workdir, f"festival_{voice}.segs")
    script = os.path.join(workdir, f"festival_{voice}.scm")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(f"(voice_{voice})\n(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))\n"
                 f"(utt.save.wave utt {_scheme_string(wav)} 'riff)\n(utt.save.segs utt {_scheme_string(segs)})\n")
    subprocess.run(["festival", "-b", script], capture_output=True, text=True, check=True)
    phones, start = [], 0.0
    with open(segs, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3 and parts[0] != "#":
                end = float(parts[0])
                phones.append((parts[2], start, end))
                start = end
    x, sr = read_audio(wav)
    return x, sr, phones


def count_vowels(phones: Sequence[Phone]) -> int:
    """Notes a phone sequence needs (one per vowel)."""
    return sum(1 for ph, _, _ in phones if ph in VOWELS)


def midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def song_timeline(phones, note_seconds, lead_s: float = LEAD_SILENCE_S, tail_s: float = TAIL_SILENCE_S):
    """Breakpoints mapping song time to speech time, and the (start, vowel_end) span of each note.

    Vowel k starts exactly on note k; the speech between vowel k and vowel k+1 (the consonants) keeps its
    natural speed at the end of note k, compressed to at most 45 % of the note; the vowel fills the rest.
    """
    vowels = [i for i, (ph, _, _) in enumerate(phones) if ph in VOWELS]
    if len(vowels) != len(note_seconds):
        sung = " ".join(p for p, _, _ in phones)
        raise ValueError(f"{len(vowels)} vowels for {len(note_seconds)} notes in '{sung}'")
    speech_start = next(s for ph, s, _ in phones if ph != "pau")
    speech_end = max(e for ph, _, e in phones if ph != "pau")
    total = phones[-1][2]
    first_vowel = phones[vowels[0]][1]
    song_t = [0.0, lead_s]
    speech_t = [0.0, speech_start]
    t = lead_s + (first_vowel - speech_start)
    spans = []
    for k, index in enumerate(vowels):
        _, v_start, v_end = phones[index]
        next_anchor = phones[vowels[k + 1]][1] if k + 1 < len(vowels) else speech_end
        duration = note_seconds[k]
        consonants = min(next_anchor - v_end, 0.45 * duration)
        vowel_end = t + duration - consonants
        song_t += [t, vowel_end, t + duration]
        speech_t += [v_start, v_end, next_anchor]
        spans.append((t, vowel_end))
        t += duration
    song_t.append(t + tail_s)
    speech_t.append(total)
    return np.array(song_t), np.array(speech_t), spans


def melody_contour(times, notes_abs, seed, vibrato_hz, vibrato_cents, glide_s: float = 0.07):
    """f0 in MIDI units at `times`: notes (start, end, midi) glided over `glide_s`, vibrato after 0.2 s, drift."""
    midi = np.full(times.shape, notes_abs[0][2], dtype=np.float64)
    for start, _, pitch in notes_abs:
        midi[times >= start] = pitch
    frame_s = times[1] - times[0]
    kernel = np.hanning(int(round(glide_s / frame_s)) | 1)
    kernel /= kernel.sum()
    half = len(kernel) // 2
    midi = np.convolve(np.pad(midi, half, mode="edge"), kernel, mode="valid")
    vibrato = np.zeros_like(times)
    for start, end, _ in notes_abs:
        inside = (times >= start) & (times < end)
        age = times[inside] - start
        ramp = np.clip((age - 0.2) / 0.25, 0.0, 1.0)
        vibrato[inside] = ramp * np.sin(2.0 * np.pi * vibrato_hz * age)
    rng = np.random.default_rng(seed)
    drift = np.convolve(rng.standard_normal(len(times) + 80), np.hanning(81), mode="valid")[: len(times)]
    drift *= 5.0 / (np.max(np.abs(drift)) + 1e-12)  # at most +-5 cents, slow
    return midi + (vibrato * vibrato_cents + drift) / 100.0


def sing_phrase(x: np.ndarray, sr: int, phones: Sequence[Phone], note_seconds: Sequence[float],
                note_midis: Sequence[float], seed: int, vibrato_hz: float = 5.5, vibrato_cents: float = 30.0,
                glide_s: float = 0.07, lead_s: float = LEAD_SILENCE_S, tail_s: float = TAIL_SILENCE_S,
                frame_ms: float = FRAME_MS) -> SungPhrase:
    """Re-time and re-pitch spoken audio `x` (rate `sr`, phone timings `phones`) onto one note per vowel."""
    from svc_core.f0.classic import load_pyworld

    pw = load_pyworld()
    x = np.ascontiguousarray(x)
    f0, frame_times = pw.harvest(x, sr, f0_floor=60.0, f0_ceil=500.0, frame_period=frame_ms)
    sp = pw.cheaptrick(x, f0, frame_times, sr)
    ap = pw.d4c(x, f0, frame_times, sr)

    song_t, speech_t, spans = song_timeline(phones, list(note_seconds), lead_s, tail_s)
    frame_s = frame_ms / 1000.0
    times = np.arange(int(np.ceil(song_t[-1] / frame_s)) + 1) * frame_s
    source_t = np.interp(times, song_t, speech_t)

    # spectral envelope (log-interpolated) and aperiodicity sampled at the re-timed positions
    pos = np.clip(source_t / frame_s, 0, sp.shape[0] - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, sp.shape[0] - 1)
    w = (pos - i0)[:, None]
    log_sp = np.log(np.maximum(sp, 1e-16))
    sp_song = np.exp((1 - w) * log_sp[i0] + w * log_sp[i1])
    ap_song = (1 - w) * ap[i0] + w * ap[i1]

    # voicing from the phone under each frame; silence outside the sung phrase, with 20 ms fades
    phone_at = np.searchsorted([e for _, _, e in phones], source_t, side="right")
    phone_at = np.minimum(phone_at, len(phones) - 1)
    names = [phones[i][0] for i in phone_at]
    voiced = np.array([n in VOWELS or n in VOICED_CONSONANTS for n in names])
    silent = np.array([n == "pau" for n in names], dtype=np.float64)
    fade = np.ones(9) / 9
    silent = np.convolve(np.pad(silent, 4, mode="edge"), fade, mode="valid")
    sp_song *= (10.0 ** (-4.0 * silent))[:, None]

    notes_abs = [(s, s + duration, midi) for (s, _), duration, midi in zip(spans, note_seconds, note_midis)]
    contour = melody_contour(times, notes_abs, seed, vibrato_hz, vibrato_cents, glide_s)
    f0_song = np.where(voiced, midi_to_hz(contour), 0.0)

    y = pw.synthesize(np.ascontiguousarray(f0_song), np.ascontiguousarray(sp_song),
                      np.ascontiguousarray(ap_song), sr, frame_ms)
    return SungPhrase(y, sr, [(float(s), float(e)) for s, e in spans], [float(m) for m in note_midis])
