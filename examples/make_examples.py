#!/usr/bin/env python3
"""Make the web demo's example clips from Debian text-to-speech voices.

    .venv/bin/python examples/make_examples.py              # rewrites the clips and examples.json here
    .venv/bin/python examples/make_examples.py --out /tmp/x # somewhere else (the tests do this)

Spoken clips: one sentence each from flite (slt, awb) and festival (ked_diphone).
Sung clips: a flite voice reads a line of one-syllable words; WORLD (pyworld) re-times it so every vowel
starts on its note and is stretched to the note's length (the consonants after it keep their natural
length, squeezed into the end of the note when needed), and replaces the speech pitch by the melody with
portamento, vibrato and a small seeded drift (svc_core/phonevec/singing.py, shared with the starter voices'
singing corpus in svc_core/starter).

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

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:  # run as a script: make svc_core importable
    sys.path.insert(0, _REPO)

from svc_core.phonevec.singing import (  # noqa: E402  (the singing synthesis, shared with svc_core.starter)
    LEAD_SILENCE_S, TAIL_SILENCE_S, flite_with_phones, read_audio, sing_phrase)

SAMPLE_RATE = 44100
TARGET_RMS_DB = -20.0
PEAK_LIMIT = 10.0 ** (-1.05 / 20.0)  # a little under -1 dBFS so 16-bit rounding cannot cross it
MANIFEST = "examples.json"
FESTIVAL_VOICE = "ked_diphone"


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
def flite(voice: str, text: str, workdir: str) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
    """Speak text with a flite voice: (audio, rate, [(phone, start_s, end_s), ...])."""
    return flite_with_phones(voice, text, workdir)


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
def sing(song: Song, workdir: str) -> tuple[np.ndarray, list[list[float]]]:
    """The song's line read by its flite voice and sung on its notes (svc_core.phonevec.singing), at 44.1 kHz."""
    x, sr, phones = flite(song.voice, song.text, workdir)
    beat = 60.0 / song.bpm
    phrase = sing_phrase(x, sr, phones, [beats * beat for _, beats in song.notes],
                         [song.tonic_midi + semis for semis, _ in song.notes], song.seed,
                         song.vibrato_hz, song.vibrato_cents)
    y = resample(phrase.audio, sr)
    notes = [[round(s, 3), round(e, 3), int(song.tonic_midi + semis)]
             for (s, e), (semis, _) in zip(phrase.spans, song.notes)]
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
