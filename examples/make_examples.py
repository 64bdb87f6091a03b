#!/usr/bin/env python3
"""Make the web demo's example clips from Debian text-to-speech voices.

    .venv/bin/python examples/make_examples.py              # rewrites the clips and examples.json here
    .venv/bin/python examples/make_examples.py --out /tmp/x # somewhere else (the tests do this)

Spoken clips: one sentence each from flite (slt, awb) and festival (ked_diphone).
Sung clips: a flite voice reads a line of one-syllable words; WORLD (pyworld) re-times it so every vowel
starts on its note and is stretched to the note's length (the consonants after it keep their natural
length, squeezed into the end of the note when needed), and replaces the speech pitch by the melody with
portamento, vibrato and a small seeded drift.

Every clip is 44.1 kHz mono 16-bit FLAC at about -20 dBFS speech-active RMS, peak <= -1 dBFS. The engines
are deterministic and the only randomness is seeded, so the same Debian packages give the same samples.
Needs the Debian packages flite, festival and festvox-kdlpc16k, and the project's venv (numpy, soundfile,
soxr, pyworld).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 44100
TARGET_RMS_DB = -20.0
PEAK_LIMIT = 10.0 ** (-1.05 / 20.0)  # a little under -1 dBFS so 16-bit rounding cannot cross it
LEAD_SILENCE_S = 0.25
TAIL_SILENCE_S = 0.35
FRAME_MS = 5.0  # WORLD frame period
MANIFEST = "examples.json"
FESTIVAL_VOICE = "ked_diphone"

# CMU phone set used by flite and festival.
VOWELS = frozenset("aa ae ah ao aw ax axr ay eh er ey ih ix iy ow oy uh uw".split())
VOICED_CONSONANTS = frozenset("b d dh g jh l m n ng r v w y z zh dx el em en".split())


@dataclass(frozen=True)
class Speech:
    file: str
    title: str
    engine: str  # "flite" or "festival"
    voice: str
    voice_label: str
    text: str
    suggested_transpose: int


@dataclass(frozen=True)
class Song:
    file: str
    title: str
    voice: str  # flite voice
    voice_label: str
    text: str  # one note per vowel: keep to words the voice reads with one vowel each
    tonic_midi: int
    bpm: float
    notes: tuple  # (semitones above the tonic, beats), one per sung syllable
    seed: int
    suggested_transpose: int
    vibrato_hz: float = 5.5
    vibrato_cents: float = 30.0


# suggested_transpose: semitones for a model with a female (alto/soprano) voice, the most common kind of
# so-vits-svc model: 0 for the female clips, +12 for the male ones. Use about 12 less for a male-voice model.
SPEECH = [
    Speech("speech_slt.flac", "Spoken, US female (flite slt)", "flite", "slt", "flite slt (US English, female)",
           "A quiet river runs beneath the old stone bridge.", 0),
    Speech("speech_awb.flac", "Spoken, Scottish male (flite awb)", "flite", "awb",
           "flite awb (Scottish English, male)", "Please bring the blue notebook back before the evening train.", 12),
    Speech("speech_ked.flac", "Spoken, US male (festival ked)", "festival", FESTIVAL_VOICE,
           "festival ked_diphone (US English, male)", "Every voice can learn a new melody with a little patience.", 12),
]

SONGS = [
    Song("singing_slt.flac", "Sung, US female (flite slt)", "slt", "flite slt (US English, female), sung with WORLD",
         "Sing me a song of the sea and the sky", tonic_midi=53, bpm=112,
         notes=((0, 1), (2, 1), (4, 0.5), (5, 1.5), (4, 0.5), (2, 0.5), (4, 1), (2, 1), (-1, 1), (0, 3)),
         seed=1, suggested_transpose=0),
    Song("singing_rms.flac", "Sung, US male (flite rms)", "rms", "flite rms (US English, male), sung with WORLD",
         "Light the lamps and let the night be bright", tonic_midi=45, bpm=100,
         notes=((0, 1), (0, 0.5), (4, 1.5), (2, 1), (4, 1), (5, 0.5), (7, 1.5), (4, 1), (0, 3)),
         seed=2, suggested_transpose=12),
]

DEBIAN_PACKAGES = {"flite": "flite", "festival": "festival", "text2wave": "festival"}


# ----------------------------------------------------------------------------------------------- checks
def missing_requirements() -> list[str]:
    """Human-readable list of what is missing to run this script (empty when everything is there)."""
    missing = []
    for binary, package in DEBIAN_PACKAGES.items():
        if shutil.which(binary) is None:
            missing.append(f"the program '{binary}' (Debian package '{package}')")
    if shutil.which("flite"):
        voices = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        for voice in sorted({s.voice for s in SPEECH if s.engine == "flite"} | {s.voice for s in SONGS}):
            if voice not in voices:
                missing.append(f"the flite voice '{voice}' (Debian package 'flite')")
    if shutil.which("festival"):
        probe = subprocess.run(["festival", "-b", f"(voice_{FESTIVAL_VOICE})"], capture_output=True, text=True)
        if probe.returncode != 0 or "not defined" in (probe.stdout + probe.stderr):
            missing.append(f"the festival voice '{FESTIVAL_VOICE}' (Debian package 'festvox-kdlpc16k')")
    for module in ("soundfile", "soxr"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package '{module}' (make setup)")
    try:
        _pyworld()
    except ImportError:
        missing.append("the Python package 'pyworld' (make setup)")
    return missing


def _pyworld():
    """pyworld's compiled module (the project's loader works around pyworld 0.3.5's pkg_resources import)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from svc_core.f0.classic import load_pyworld

    return load_pyworld()


def engine_versions() -> str:
    """Installed versions of the Debian packages the clips come from (stored in every file's tags)."""
    parts = []
    for package in ("flite", "festival", "festvox-kdlpc16k"):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                                 capture_output=True, text=True).stdout.strip()
        except OSError:
            out = ""
        parts.append(f"{package} {out or 'unknown'}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------- TTS
def read_audio(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float64", always_2d=True)
    return x.mean(axis=1), sr


def flite(voice: str, text: str, workdir: str) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
    """Speak text with a flite voice: (audio, rate, [(phone, start_s, end_s), ...])."""
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


def festival(voice: str, text: str, workdir: str) -> tuple[np.ndarray, int]:
    wav = os.path.join(workdir, f"festival_{voice}.wav")
    subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", wav], input=text, text=True,
                   capture_output=True, check=True)
    return read_audio(wav)


# ----------------------------------------------------------------------------------------------- audio helpers
def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    import soxr

    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ")


def frame_db(x: np.ndarray, sr: int, frame_s: float = 0.02) -> np.ndarray:
    n = int(sr * frame_s)
    frames = x[: len(x) // n * n].reshape(-1, n)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def trim_and_pad(x: np.ndarray, sr: int, floor_db: float = -50.0) -> np.ndarray:
    """Cut the engine's own leading/trailing silence and put back a fixed amount."""
    db = frame_db(x, sr, 0.01)
    active = np.flatnonzero(db > db.max() + floor_db)
    n = int(sr * 0.01)
    body = x[active[0] * n : (active[-1] + 1) * n]
    return np.concatenate([np.zeros(int(sr * LEAD_SILENCE_S)), body, np.zeros(int(sr * TAIL_SILENCE_S))])


def normalise(x: np.ndarray, sr: int) -> np.ndarray:
    """Scale to TARGET_RMS_DB over the frames within 40 dB of the loudest, then keep the peak <= -1 dBFS."""
    db = frame_db(x, sr)
    active = db > db.max() - 40.0
    rms_db = 10.0 * np.log10(np.mean(10.0 ** (db[active] / 10.0)))
    y = x * 10.0 ** ((TARGET_RMS_DB - rms_db) / 20.0)
    peak = np.max(np.abs(y))
    if peak > PEAK_LIMIT:
        y *= PEAK_LIMIT / peak
    return y


def write_flac(path: str, x: np.ndarray, title: str, text: str, versions: str) -> None:
    import soundfile as sf

    with sf.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, format="FLAC", subtype="PCM_16") as f:
        f.title = title
        f.comment = text
        f.software = f"svc-studio examples/make_examples.py from {versions}"
        f.write(np.clip(x, -1.0, 1.0))


# ----------------------------------------------------------------------------------------------- singing
def midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def song_timeline(phones, note_seconds):
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
    song_t = [0.0, LEAD_SILENCE_S]
    speech_t = [0.0, speech_start]
    t = LEAD_SILENCE_S + (first_vowel - speech_start)
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
    song_t.append(t + TAIL_SILENCE_S)
    speech_t.append(total)
    return np.array(song_t), np.array(speech_t), spans


def melody_contour(times, notes_abs, seed, vibrato_hz, vibrato_cents):
    """f0 in MIDI units at `times`: notes (start, end, midi) glided over ~70 ms, vibrato after 0.2 s, drift."""
    midi = np.full(times.shape, notes_abs[0][2], dtype=np.float64)
    for start, _, pitch in notes_abs:
        midi[times >= start] = pitch
    frame_s = times[1] - times[0]
    kernel = np.hanning(int(round(0.07 / frame_s)) | 1)
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


def sing(song: Song, workdir: str) -> tuple[np.ndarray, list[list[float]]]:
    pw = _pyworld()
    x, sr, phones = flite(song.voice, song.text, workdir)
    x = np.ascontiguousarray(x)
    f0, frame_times = pw.harvest(x, sr, f0_floor=60.0, f0_ceil=500.0, frame_period=FRAME_MS)
    sp = pw.cheaptrick(x, f0, frame_times, sr)
    ap = pw.d4c(x, f0, frame_times, sr)

    beat = 60.0 / song.bpm
    song_t, speech_t, spans = song_timeline(phones, [beats * beat for _, beats in song.notes])
    frame_s = FRAME_MS / 1000.0
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

    notes_abs = [(s, s + beats * beat, song.tonic_midi + semis)
                 for (s, _), (semis, beats) in zip(spans, song.notes)]
    contour = melody_contour(times, notes_abs, song.seed, song.vibrato_hz, song.vibrato_cents)
    f0_song = np.where(voiced, midi_to_hz(contour), 0.0)

    y = pw.synthesize(np.ascontiguousarray(f0_song), np.ascontiguousarray(sp_song),
                      np.ascontiguousarray(ap_song), sr, FRAME_MS)
    y = resample(y, sr)
    notes = [[round(s, 3), round(e, 3), int(song.tonic_midi + semis)] for (s, e), (semis, _) in zip(spans, song.notes)]
    return y, notes


# ----------------------------------------------------------------------------------------------- main
def make_all(out_dir: str, quiet: bool = False) -> list[dict]:
    os.makedirs(out_dir, exist_ok=True)
    versions = engine_versions()
    manifest = []
    with tempfile.TemporaryDirectory(prefix="svc_examples_") as work:
        for item in SPEECH:
            if item.engine == "flite":
                x, sr, _ = flite(item.voice, item.text, work)
            else:
                x, sr = festival(item.voice, item.text, work)
            y = normalise(trim_and_pad(resample(x, sr), SAMPLE_RATE), SAMPLE_RATE)
            write_flac(os.path.join(out_dir, item.file), y, item.title, item.text, versions)
            manifest.append(dict(file=item.file, title=item.title, kind="speech", voice=item.voice_label,
                                 text=item.text, suggested_transpose=item.suggested_transpose))
            _report(out_dir, item.file, y, quiet)
        for song in SONGS:
            y, notes = sing(song, work)
            y = normalise(y, SAMPLE_RATE)
            write_flac(os.path.join(out_dir, song.file), y, song.title, song.text, versions)
            manifest.append(dict(file=song.file, title=song.title, kind="singing", voice=song.voice_label,
                                 text=song.text, suggested_transpose=song.suggested_transpose, notes=notes))
            _report(out_dir, song.file, y, quiet)
    made = {entry["file"] for entry in manifest}
    for name in sorted(os.listdir(out_dir)):
        if name.lower().endswith((".flac", ".wav", ".mp3", ".ogg")) and name not in made:
            print(f"warning: {name} in {out_dir} is not one of the examples (the demo would offer it too)",
                  file=sys.stderr)
    with open(os.path.join(out_dir, MANIFEST), "w") as f:  # one entry per line
        f.write("[\n" + ",\n".join(json.dumps(entry) for entry in manifest) + "\n]\n")
    return manifest


def _report(out_dir: str, name: str, y: np.ndarray, quiet: bool) -> None:
    if not quiet:
        size = os.path.getsize(os.path.join(out_dir, name))
        print(f"{name:22s} {len(y) / SAMPLE_RATE:5.2f} s  {size / 1024:6.1f} KiB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="output folder (default: the examples/ folder this script is in)")
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        print("error: make_examples.py needs " + "; ".join(missing) + ".\n"
              "  Debian/Ubuntu: sudo apt-get install flite festival festvox-kdlpc16k", file=sys.stderr)
        return 2
    make_all(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
