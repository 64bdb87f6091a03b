"""The starter corpus: 2 sentences x 2 voices (flite slt, festival ked), spoken and sung, into a temp folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from svc_core.f0 import get_predictor
from svc_core.starter.corpus import StarterCorpusSettings, build_corpus
from svc_core.starter.heldout import EVAL_TEXT_HASHES, example_texts, phonevec_heldout_texts, select_sentences, \
    text_hash
from svc_core.starter.melody import make_melody
from svc_core.starter.voices import STARTER_VOICES

VOICES = ("flite_slt", "fest_ked")
EVAL_TEXTS = Path(__file__).resolve().parents[3] / "shared" / "eval" / "svceval" / "texts.py"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    missing = [b for b in ("flite", "festival") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Debian TTS programs missing: {', '.join(missing)}")
    out = tmp_path_factory.mktemp("starter_corpus")
    doc = build_corpus(StarterCorpusSettings(out=str(out), n_sentences=2, voices=VOICES, jobs=2))
    return out, doc


def test_files_are_44k_mono_and_listed(corpus):
    out, doc = corpus
    on_disk = sorted(p.relative_to(out).as_posix() for p in (out / "raw").rglob("*") if p.is_file())
    assert on_disk == sorted(c["path"] for c in doc["clips"])
    assert json.loads((out / "manifest.json").read_text()) == doc
    assert len(doc["clips"]) == 2 * 2 * 2  # sentences x voices x (speech + one song)
    assert {(c["voice"], c["kind"]) for c in doc["clips"]} == {(v, k) for v in VOICES for k in ("speech", "singing")}
    for clip in doc["clips"]:
        info = sf.info(str(out / clip["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        assert abs(info.duration - clip["seconds"]) < 0.01
        x, _ = sf.read(str(out / clip["path"]))
        assert 0.05 < np.max(np.abs(x)) <= 10 ** (-1 / 20) + 1e-4


def test_singing_follows_its_melody(corpus):
    out, doc = corpus
    for clip in (c for c in doc["clips"] if c["kind"] == "singing"):
        x, sr = sf.read(str(out / clip["path"]), dtype="float32")
        f0, uv = (np.asarray(a) for a in get_predictor("pm", hop_length=512, sampling_rate=sr).compute_f0_uv(x))
        times = np.arange(len(f0)) * 512 / sr
        cents = []
        for start, end, midi in clip["notes"]:
            voiced = (times >= start + 0.04) & (times <= end - 0.03) & (uv > 0)
            if voiced.sum() >= 2:
                cents.append(1200 * np.log2(np.median(f0[voiced]) / (440 * 2 ** ((midi - 69) / 12))))
        assert len(cents) >= 0.9 * len(clip["notes"]) >= 4, clip["path"]
        assert np.median(np.abs(cents)) <= 50, (clip["path"], cents)
        assert np.mean(np.abs(cents) <= 50) >= 0.9, (clip["path"], cents)


def test_rerun_renders_nothing_and_keeps_the_manifest(corpus):
    out, doc = corpus
    stamps = {p: p.stat().st_mtime_ns for p in (out / "raw").rglob("*.wav")}
    again = build_corpus(StarterCorpusSettings(out=str(out), n_sentences=2, voices=VOICES, jobs=1))
    assert again == doc
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "raw").rglob("*.wav")}


def test_training_sentences_avoid_every_held_out_text():
    train, heldout = select_sentences(300)
    assert len(train) == 300 and len(set(train)) == 300 and not set(train) & set(heldout)
    forbidden = EVAL_TEXT_HASHES | {text_hash(t) for t in example_texts() + phonevec_heldout_texts() + tuple(heldout)}
    assert not {text_hash(t) for t in train} & forbidden
    assert select_sentences(3)[0] == train[:3]  # a longer list extends a shorter one


@pytest.mark.skipif(not EVAL_TEXTS.is_file(), reason="../shared/eval is not beside the repo")
def test_eval_hashes_match_the_evaluation_texts():
    scope: dict = {}
    exec(compile(EVAL_TEXTS.read_text(), str(EVAL_TEXTS), "exec"), scope)  # a plain list of strings
    assert {text_hash(t) for t in scope["SENTENCES"]} == EVAL_TEXT_HASHES


@pytest.mark.parametrize("voice", STARTER_VOICES, ids=[v.id for v in STARTER_VOICES])
def test_melodies_stay_in_range_and_span_it(voice):
    lows, highs = [], []
    for seed in range(40):
        m = make_melody(14, voice.low_midi, voice.high_midi, voice.tonic_midi, np.random.default_rng(seed))
        assert len(m.midis) == len(m.seconds) == 14
        assert voice.low_midi <= min(m.midis) and max(m.midis) <= voice.high_midi
        assert all(0.2 <= s <= 2.2 for s in m.seconds)
        lows.append(min(m.midis))
        highs.append(max(m.midis))
        assert m.to_json() == make_melody(14, voice.low_midi, voice.high_midi, voice.tonic_midi,
                                          np.random.default_rng(seed)).to_json()
    assert max(highs) - min(lows) >= 16  # the melodies cover about an octave and a half
    assert np.median(np.array(highs) - np.array(lows)) >= 9  # and one melody spans most of it
