"""The starter voices' training corpus: generated sentences spoken AND sung by the four target voices.

    build_corpus(StarterCorpusSettings(out="build/starter/corpus", n_sentences=200, songs_per_sentence=1, jobs=2))

Layout under `out` (ready for `python -m svc_core preprocess --in OUT/raw ...`):
* `raw/<voice>/T0000_speech.wav`: the sentence spoken by the engine (44.1 kHz mono 16-bit, trimmed to 0.15 s of
  silence each side, -20 dBFS speech-active RMS, peaks <= -1 dBFS);
* `raw/<voice>/T0000_sing1.wav` .. `_sing<K>.wav`: the same voice singing the sentence, one note per vowel, to a
  seeded melody in the voice's range (`melody.make_melody`, `svc_core.phonevec.singing.sing_phrase`), same format;
* `meta/<voice>/T0000_sing1.json`: the melody and the sung notes [start_s, vowel_end_s, midi] of one song;
* `manifest.json`: settings, voices (keys and ranges), training sentences, the held-out lists and one entry per
  clip (`path`, `voice`, `sentence`, `kind`, `seconds`, and `melody` + `notes` for songs).
Every random choice comes from `numpy.random.default_rng([seed, sentence, voice, song])`, so a clip does not depend
on `--jobs` or on which other clips exist; reruns keep the clips on disk and only render what is missing.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Iterable

import numpy as np

from ..phonevec.singing import count_vowels, festival_with_phones, flite_with_phones, sing_phrase
from ..phonevec.voices import normalize, set_level
from .heldout import EVAL_TEXT_HASHES, STARTER_SENTENCE_SEED, example_texts, phonevec_heldout_texts, \
    select_sentences
from .melody import make_melody
from .voices import STARTER_VOICE_IDS, StarterVoice, starter_voice

SAMPLE_RATE = 44100
CORPUS_FORMAT = "svc-starter-corpus"
CORPUS_VERSION = 1
MANIFEST = "manifest.json"
CLIP_NAME = re.compile(r"^T\d{4,}_(speech|sing\d+)\.wav$")


@dataclass
class StarterCorpusSettings:
    """What to render: `n_sentences` training sentences x `voices`, each spoken once and sung
    `songs_per_sentence` times."""

    out: str
    n_sentences: int = 200
    songs_per_sentence: int = 1
    voices: tuple[str, ...] = STARTER_VOICE_IDS
    sentence_seed: int = STARTER_SENTENCE_SEED
    seed: int = 0
    jobs: int = 1


def speak(voice: StarterVoice, text: str, workdir: str) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
    """(engine audio, rate, phone timings) of `text` read by `voice`."""
    if voice.engine == "flite":
        return flite_with_phones(voice.name, text, workdir)
    return festival_with_phones(voice.name, text, workdir)


def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return x if sr == SAMPLE_RATE else soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")


def _write_wav(path: str, audio: np.ndarray) -> None:
    import soundfile as sf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    sf.write(tmp, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _write_json(path: str, doc: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, path)


def song_params(settings: StarterCorpusSettings, sentence: int, voice: StarterVoice, song: int,
                n_notes: int) -> tuple[Any, int]:
    """(Melody, drift seed) of one song, drawn from its own seeded generator."""
    rng = np.random.default_rng([settings.seed, sentence, STARTER_VOICE_IDS.index(voice.id), song])
    melody = make_melody(n_notes, voice.low_midi, voice.high_midi, voice.tonic_midi, rng)
    return melody, int(rng.integers(2**31))


def _render_unit(job: tuple[StarterCorpusSettings, int, str, str]) -> list[dict[str, Any]]:
    """Speech + songs of one (sentence, voice): renders the missing files, returns the clip entries."""
    settings, sentence, voice_id, text = job
    voice = starter_voice(voice_id)
    sid = f"T{sentence:04d}"
    names = [f"{sid}_speech"] + [f"{sid}_sing{k}" for k in range(1, settings.songs_per_sentence + 1)]
    wav = {n: os.path.join(settings.out, "raw", voice_id, n + ".wav") for n in names}
    meta = {n: os.path.join(settings.out, "meta", voice_id, n + ".json") for n in names}
    if not all(os.path.isfile(wav[n]) and os.path.isfile(meta[n]) for n in names):
        with tempfile.TemporaryDirectory(prefix="starter_") as work:
            x, sr, phones = speak(voice, text, work)
        if not os.path.isfile(wav[names[0]]) or not os.path.isfile(meta[names[0]]):
            speech = normalize(_resample(x, sr), SAMPLE_RATE)
            _write_wav(wav[names[0]], speech)
            _write_json(meta[names[0]], {"kind": "speech", "n_samples": len(speech)})
        for k, name in enumerate(names[1:], 1):
            if os.path.isfile(wav[name]) and os.path.isfile(meta[name]):
                continue
            melody, drift_seed = song_params(settings, sentence, voice, k, count_vowels(phones))
            phrase = sing_phrase(x, sr, phones, melody.seconds, melody.midis, drift_seed, melody.vibrato_hz,
                                 melody.vibrato_cents, melody.glide_s)
            audio = set_level(_resample(phrase.audio, sr), SAMPLE_RATE)
            notes = [[round(s, 3), round(e, 3), m] for (s, e), m in zip(phrase.spans, melody.midis)]
            _write_wav(wav[name], audio)
            _write_json(meta[name], {"kind": "singing", "n_samples": len(audio), "melody": melody.to_json(),
                                     "notes": notes})
    entries = []
    for name in names:
        with open(meta[name], encoding="utf-8") as fh:
            info = json.load(fh)
        entry = {"path": f"raw/{voice_id}/{name}.wav", "voice": voice_id, "sentence": sid, "kind": info["kind"],
                 "sample_rate": SAMPLE_RATE, "seconds": round(info["n_samples"] / SAMPLE_RATE, 3)}
        if info["kind"] == "singing":
            entry.update(melody=info["melody"], notes=info["notes"])
        entries.append(entry)
    return entries


def _remove_stale(settings: StarterCorpusSettings, keep: set[str]) -> list[str]:
    """Delete generated clips (T*_speech/_sing*.wav) of this corpus that the current settings do not make."""
    removed = []
    raw = os.path.join(settings.out, "raw")
    for voice_id in sorted(os.listdir(raw)) if os.path.isdir(raw) else []:
        folder = os.path.join(raw, voice_id)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            rel = f"raw/{voice_id}/{name}"
            if CLIP_NAME.match(name) and rel not in keep:
                os.remove(os.path.join(folder, name))
                removed.append(rel)
    return removed


def build_corpus(settings: StarterCorpusSettings, progress: bool = False) -> dict[str, Any]:
    """Render what `settings` asks for (keeping files on disk), rewrite manifest.json and return it."""
    for voice_id in settings.voices:
        starter_voice(voice_id)  # KeyError for an unknown voice before any work
    os.makedirs(settings.out, exist_ok=True)
    train, heldout = select_sentences(settings.n_sentences, settings.sentence_seed)
    jobs = [(settings, i, v, text) for i, text in enumerate(train) for v in settings.voices]
    clips: list[dict[str, Any]] = []

    def collect(results: Iterable[list[dict[str, Any]]]) -> None:
        for n, entries in enumerate(results, 1):
            clips.extend(entries)
            if progress and (n % 20 == 0 or n == len(jobs)):
                print(f"  {n}/{len(jobs)} (sentence, voice) units", flush=True)

    if settings.jobs <= 1:
        collect(map(_render_unit, jobs))
    else:
        with get_context("fork").Pool(settings.jobs) as pool:
            collect(pool.imap(_render_unit, jobs, chunksize=2))
    removed = _remove_stale(settings, {c["path"] for c in clips})
    doc = {
        "format": CORPUS_FORMAT, "version": CORPUS_VERSION, "sample_rate": SAMPLE_RATE,
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("out", "jobs")}
        | {"voices": list(settings.voices)},  # what decides the audio (not where, nor how many workers)
        "voices": [{"id": v.id, "engine": v.engine, "name": v.name, "label": v.label, "tonic_midi": v.tonic_midi,
                    "low_midi": v.low_midi, "high_midi": v.high_midi}
                   for v in map(starter_voice, settings.voices)],
        "sentences": [{"id": f"T{i:04d}", "text": t} for i, t in enumerate(train)],
        "heldout": {"starter": heldout, "examples": list(example_texts()),
                    "eval_text_hashes": len(EVAL_TEXT_HASHES), "phonevec_probe": len(phonevec_heldout_texts())},
        "totals": {kind: {"clips": sum(1 for c in clips if c["kind"] == kind),
                          "hours": round(sum(c["seconds"] for c in clips if c["kind"] == kind) / 3600, 4)}
                   for kind in ("speech", "singing")},
        "removed": removed,
        "clips": clips,
    }
    _write_json(os.path.join(settings.out, MANIFEST), doc)
    return doc
