"""The phonevec training corpus: generated sentences spoken by the 15 voices, plus seeded WORLD variants.

    build_corpus(CorpusSettings(out="data/phonevec", n_sentences=3000, jobs=2))
    corpus = load_corpus("data/phonevec")          # Corpus: sentences (text, phones, split) and clip entries

Layout under `out`:
* `clips/<voice>/S0001.flac`: the clean clip (16 kHz mono 16-bit, see `voices.render`);
* `clips/<voice>/S0001_w1.flac`: WORLD variant 1 ("pitch": shift -6..+8 semitones and a formant warp, or
  "sing": the f0 replaced by a melody, voiced frames stretched x1-2.5, formants warped), same phone targets;
* `corpus.json`: settings, sentences (`id`, `text`, `phones`, `split` = "train" | "heldout"), voices and one
  entry per clip (`path`, `sentence`, `voice`, `variant`, `kind`, `params`, `n_samples`).
Every random choice is drawn from `numpy.random.default_rng([seed, sentence, voice, variant])`, so a clip does
not depend on `--jobs`, on the order of work, or on which other clips exist. Re-running skips clips on disk,
so a corpus can grow in steps (a longer sentence list extends a shorter one).
Sentence i is held out (never trained on) when i % heldout_every == heldout_every - 1.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Iterable

import numpy as np

from . import augment
from .sentences import generate_sentences, sentences_hash
from .text import PHONE_SET, phonemize_many
from .voices import PEAK, SAMPLE_RATE, VOICE_IDS, render, voice_by_id

CORPUS_FORMAT = "svc-phonevec-corpus"
CORPUS_VERSION = 1
MANIFEST = "corpus.json"


@dataclass
class CorpusSettings:
    """What to render. `world_variants` WORLD variants per (sentence, voice), each made with probability
    `world_fraction` (seeded)."""

    out: str
    n_sentences: int = 3000
    sentence_seed: int = 0
    voices: tuple[str, ...] = VOICE_IDS
    world_variants: int = 1
    world_fraction: float = 1.0
    heldout_every: int = 10
    seed: int = 0
    jobs: int = 1


@dataclass
class Corpus:
    """A loaded manifest: `root`, sentences (dicts with id/text/phones/split), clips (dicts, paths relative)."""

    root: str
    sentences: list[dict[str, Any]]
    clips: list[dict[str, Any]]
    voices: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    def path(self, clip: dict[str, Any]) -> str:
        """Absolute path of a clip entry."""
        return os.path.join(self.root, clip["path"])

    def targets(self, clip: dict[str, Any]) -> list[int]:
        """Phone ids (1..41) of a clip's sentence."""
        return PHONE_SET.encode(self.sentences[clip["sentence"]]["phones"])

    def select(self, split: str | None = None, voices: Iterable[str] | None = None,
               variants: Iterable[int] | None = None, max_sentences: int | None = None) -> list[dict[str, Any]]:
        """Clips filtered by sentence split, voice ids, variant numbers (0 = clean), first `max_sentences`."""
        voices = set(voices) if voices is not None else None
        variants = set(variants) if variants is not None else None
        keep_sentences = [i for i, s in enumerate(self.sentences) if split is None or s["split"] == split]
        if max_sentences is not None:
            keep_sentences = keep_sentences[:max_sentences]
        keep = set(keep_sentences)
        return [c for c in self.clips if c["sentence"] in keep
                and (voices is None or c["voice"] in voices) and (variants is None or c["variant"] in variants)]


def _voice_center_hz(voice_id: str) -> float:
    """A rough singing centre per voice (Hz): female espeak/slt higher, male lower."""
    return 210.0 if voice_id.startswith(("esp_f", "flite_slt")) else 120.0


def variant_params(settings: CorpusSettings, sentence: int, voice_id: str, variant: int) -> dict[str, Any] | None:
    """The seeded WORLD recipe of one variant (None when the draw skips it)."""
    rng = np.random.default_rng([settings.seed, sentence, VOICE_IDS.index(voice_id), variant])
    if rng.random() >= settings.world_fraction:
        return None
    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    if rng.random() < 0.5:
        semitones = float(rng.uniform(-6.0, 8.0))
        return {"kind": "pitch", "semitones": semitones, "formant_alpha": log_uniform(0.86, 1.16),
                "seed": int(rng.integers(2**31))}
    center = _voice_center_hz(voice_id) * 2.0 ** (rng.uniform(-4.0, 7.0) / 12.0)
    stretch = float(rng.uniform(1.0, 2.5))
    return {"kind": "sing", "center_hz": center, "stretch": stretch, "formant_alpha": log_uniform(0.9, 1.12),
            "seed": int(rng.integers(2**31))}


def make_variant(clean: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Apply a `variant_params` recipe to a clean clip [N] -> float32 audio (same length for 'pitch')."""
    world = augment.analyse(clean.astype(np.float64), SAMPLE_RATE)
    if params["kind"] == "pitch":
        out = augment.world_transform(clean, SAMPLE_RATE, pitch_ratio=2.0 ** (params["semitones"] / 12.0),
                                      formant_alpha=params["formant_alpha"], world=world)
    else:
        stretched = augment.stretch_voiced(world, params["stretch"])
        contour = augment.singing_contour(len(stretched.f0), np.random.default_rng(params["seed"]),
                                          params["center_hz"])
        out = augment.world_transform(clean, SAMPLE_RATE, formant_alpha=params["formant_alpha"], contour=contour,
                                      world=stretched)
    return match_level(out, clean)


def match_level(audio: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale `audio` to the RMS of `reference`, then keep peaks <= -1 dBFS (float32)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) + 1e-9
    out = audio * (float(np.sqrt(np.mean(np.square(reference, dtype=np.float64)))) / rms)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return (out * (PEAK / peak) if peak > PEAK else out).astype(np.float32)


def _write_flac(path: str, audio: np.ndarray) -> None:
    import soundfile as sf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    sf.write(tmp, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    os.replace(tmp, path)


def _read(path: str) -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(path, dtype="float32")
    return audio


def _render_unit(job: tuple[CorpusSettings, int, str, str]) -> list[dict[str, Any]]:
    """Render (or find) the clean clip and the WORLD variants of one (sentence, voice); returns clip entries."""
    settings, sentence, voice_id, text = job
    sid = f"S{sentence:04d}"
    rel = os.path.join("clips", voice_id, f"{sid}.flac")
    path = os.path.join(settings.out, rel)
    clean = _read(path) if os.path.isfile(path) else None
    if clean is None:
        clean = render(voice_by_id(voice_id), text)
        _write_flac(path, clean)
    entries = [{"path": rel, "sentence": sentence, "voice": voice_id, "variant": 0, "kind": "clean", "params": {},
                "n_samples": int(len(clean))}]
    for k in range(1, settings.world_variants + 1):
        params = variant_params(settings, sentence, voice_id, k)
        if params is None:
            continue
        vrel = os.path.join("clips", voice_id, f"{sid}_w{k}.flac")
        vpath = os.path.join(settings.out, vrel)
        if os.path.isfile(vpath):
            import soundfile as sf

            n = sf.info(vpath).frames
        else:
            audio = make_variant(clean, params)
            _write_flac(vpath, audio)
            n = len(audio)
        entries.append({"path": vrel, "sentence": sentence, "voice": voice_id, "variant": k, "kind": params["kind"],
                        "params": params, "n_samples": int(n)})
    return entries


def _sentence_table(settings: CorpusSettings) -> list[dict[str, Any]]:
    """Sentences with phones; reuses the phones of an existing manifest with the same sentence hash."""
    texts = generate_sentences(settings.n_sentences, settings.sentence_seed)
    manifest = os.path.join(settings.out, MANIFEST)
    if os.path.isfile(manifest):
        with open(manifest, encoding="utf-8") as fh:
            old = json.load(fh)
        old_sentences = old.get("sentences", [])
        if len(old_sentences) >= len(texts) and sentences_hash([s["text"] for s in old_sentences[:len(texts)]]) \
                == sentences_hash(texts):
            return old_sentences[:len(texts)]
    phones = phonemize_many(texts, jobs=max(1, settings.jobs))
    every = settings.heldout_every
    return [{"id": f"S{i:04d}", "text": t, "phones": p, "split": "heldout" if i % every == every - 1 else "train"}
            for i, (t, p) in enumerate(zip(texts, phones))]


def build_corpus(settings: CorpusSettings, progress: bool = False) -> Corpus:
    """Render everything `settings` asks for (skipping files on disk) and rewrite corpus.json."""
    os.makedirs(settings.out, exist_ok=True)
    sentences = _sentence_table(settings)
    jobs = [(settings, i, v, sentences[i]["text"]) for i in range(settings.n_sentences)
            for v in settings.voices]
    clips: list[dict[str, Any]] = []
    if settings.jobs <= 1:
        results: Iterable[list[dict[str, Any]]] = map(_render_unit, jobs)
        for n, entries in enumerate(results, 1):
            clips.extend(entries)
            if progress and n % 100 == 0:
                print(f"  {n}/{len(jobs)} (sentence, voice) units", flush=True)
    else:
        with get_context("fork").Pool(settings.jobs) as pool:
            for n, entries in enumerate(pool.imap(_render_unit, jobs, chunksize=4), 1):
                clips.extend(entries)
                if progress and n % 100 == 0:
                    print(f"  {n}/{len(jobs)} (sentence, voice) units", flush=True)
    manifest = {"format": CORPUS_FORMAT, "version": CORPUS_VERSION, "settings": dataclasses.asdict(settings),
                "sentence_hash": sentences_hash([s["text"] for s in sentences]), "phones": list(PHONE_SET.phones),
                "voices": list(settings.voices), "sentences": sentences, "clips": clips}
    manifest["settings"]["voices"] = list(settings.voices)
    tmp = os.path.join(settings.out, MANIFEST + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=0)
    os.replace(tmp, os.path.join(settings.out, MANIFEST))
    return load_corpus(settings.out)


def load_corpus(root: str) -> Corpus:
    """Read `root/corpus.json`; raises FileNotFoundError / ValueError for a missing or foreign manifest."""
    with open(os.path.join(root, MANIFEST), encoding="utf-8") as fh:
        manifest = json.load(fh)
    if manifest.get("format") != CORPUS_FORMAT:
        raise ValueError(f"{root}/{MANIFEST} is not a phonevec corpus manifest")
    if list(manifest["phones"]) != list(PHONE_SET.phones):
        raise ValueError(f"{root} was built with a different phone inventory; rebuild it")
    return Corpus(root, manifest["sentences"], manifest["clips"], manifest["voices"], manifest["settings"])
