"""Corpus rendering with real TTS voices: files, manifest, targets, determinism, split, re-runs."""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from svc_core.phonevec.corpus import CorpusSettings, build_corpus, load_corpus, variant_params
from svc_core.phonevec.text import PHONE_SET
from svc_core.phonevec.voices import VOICE_IDS, VOICES, normalize

from .conftest import TINY_VOICES, require_tts


def test_fifteen_fixed_voices() -> None:
    assert len(VOICES) == 15 and len(set(VOICE_IDS)) == 15
    assert {v.engine for v in VOICES} == {"espeak", "flite", "festival"}
    assert {"flite_awb", "flite_rms", "flite_slt", "fest_ked", "esp_m1", "esp_f5"} <= set(VOICE_IDS)


def test_tiny_corpus_layout(tiny_corpus) -> None:
    assert [s["split"] for s in tiny_corpus.sentences] == ["train", "heldout", "train", "heldout"]
    clean = tiny_corpus.select(variants=[0])
    assert len(clean) == 4 * len(TINY_VOICES)
    assert len(tiny_corpus.clips) == 2 * len(clean)  # world_fraction 1.0: one variant per clean clip
    for clip in tiny_corpus.clips:
        audio, sr = sf.read(tiny_corpus.path(clip), dtype="float32")
        assert sr == 16000 and audio.ndim == 1 and len(audio) == clip["n_samples"] > 8000
        assert np.abs(audio).max() < 1.0
        assert tiny_corpus.targets(clip) == PHONE_SET.encode(tiny_corpus.sentences[clip["sentence"]]["phones"])
    for clip in tiny_corpus.clips:
        if clip["kind"] == "pitch":
            clean_clip = next(c for c in clean if c["sentence"] == clip["sentence"] and c["voice"] == clip["voice"])
            assert clip["n_samples"] == clean_clip["n_samples"]
    heldout = tiny_corpus.select("heldout", variants=[0])
    assert {c["sentence"] for c in heldout} == {1, 3}


def test_two_by_two_is_deterministic_and_rerun_skips(tmp_path) -> None:
    require_tts()
    settings = dict(n_sentences=2, voices=("esp_f3", "fest_ked"), world_fraction=0.0)
    a = build_corpus(CorpusSettings(out=str(tmp_path / "a"), jobs=2, **settings))
    b = build_corpus(CorpusSettings(out=str(tmp_path / "b"), jobs=1, **settings))
    assert len(a.clips) == 4 and [c["path"] for c in a.clips] == [c["path"] for c in b.clips]
    for ca, cb in zip(a.clips, b.clips):
        assert np.array_equal(sf.read(a.path(ca))[0], sf.read(b.path(cb))[0])
    first = a.path(a.clips[0])
    mtime = os.stat(first).st_mtime_ns
    again = build_corpus(CorpusSettings(out=str(tmp_path / "a"), jobs=1, **settings))
    assert os.stat(first).st_mtime_ns == mtime and again.clips == a.clips
    assert load_corpus(str(tmp_path / "a")).sentences == a.sentences


def test_variant_recipes_are_seeded() -> None:
    s = CorpusSettings(out="unused")
    assert variant_params(s, 5, "esp_m1", 1) == variant_params(s, 5, "esp_m1", 1)
    kinds = {variant_params(s, i, "flite_slt", 1)["kind"] for i in range(40)}
    assert kinds == {"pitch", "sing"}
    assert all(variant_params(CorpusSettings(out="u", world_fraction=0.0), i, "esp_m1", 1) is None for i in range(5))


def test_normalize_trims_and_levels() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    x = np.concatenate([np.zeros(sr), 0.05 * np.sin(2 * np.pi * 220 * t), np.zeros(sr)])
    y = normalize(x)
    assert abs(len(y) - (sr + 0.3 * sr)) <= 160
    active = y[int(0.2 * sr): int(1.0 * sr)]
    assert abs(20 * np.log10(np.sqrt(np.mean(active**2))) + 20.0) < 0.5
