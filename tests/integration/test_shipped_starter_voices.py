"""The starter voices shipped in voices/starter (WORLD voice, the default) and voices/starter-sovits (so-vits-svc 4.1):
files match their manifests, fit the size budget together, load through the normal loaders and convert an example
clip to every speaker; the default voice sings the melody it is given."""
from __future__ import annotations

import json

import numpy as np
import pytest

from svc_core.audio import load_audio
from svc_core.f0 import get_predictor
from svc_core.starter.evaluation import load_voice
from svc_core.starter.package import MANIFEST, verify_package
from svc_core.starter.voices import STARTER_VOICE_IDS
from svc_core.ui.settings import REPO_ROOT, STARTER_SOVITS, STARTER_VOICES

SIZE_BUDGET_BYTES = 60 * 10**6  # models + encoder (issue #4)
PACKAGES = (STARTER_VOICES, STARTER_SOVITS)


def _manifest(folder) -> dict:
    path = folder / MANIFEST
    assert path.is_file(), f"{folder} is not in the repo; build it with `make starter-voices`"
    return json.loads(path.read_text(encoding="utf-8"))


def test_files_match_manifests_and_budget():
    total = 0
    for folder in PACKAGES:
        doc = _manifest(folder)
        assert verify_package(folder) == [], folder
        assert sorted(doc["speakers"]) == sorted(STARTER_VOICE_IDS)
        total += sum(f["bytes"] for f in doc["files"].values())
    assert total <= SIZE_BUDGET_BYTES
    default = _manifest(STARTER_VOICES)
    assert default["encoder_file"] in default["files"]
    assert any(name.startswith("W_") for name in default["files"])  # the default is the WORLD voice
    # on the posteriorgram (little speaker information), which the shipped phonevec256.pt file also gives
    assert default["speech_encoder"] == "phoneppg42" and default["encoder_file"] == "phonevec256.pt"
    assert _manifest(STARTER_SOVITS)["speech_encoder"] == "phonevec256"


@pytest.fixture(scope="module")
def svc():
    return load_voice(STARTER_VOICES)


@pytest.fixture(scope="module")
def example():
    return load_audio(REPO_ROOT / "examples" / "singing_slt.flac")


@pytest.mark.parametrize("speaker", STARTER_VOICE_IDS)
def test_example_converts_to_every_speaker(svc, example, speaker):
    wav, sr = example
    out = svc.slice_inference(wav, sr, speaker, transpose=0, f0_predictor="fcpe")
    assert abs(len(out) / svc.sample_rate - len(wav) / sr) < 0.05
    assert np.isfinite(out).all() and 0.01 < float(np.sqrt(np.mean(out ** 2))) < 0.5 and np.abs(out).max() <= 1.0


def test_default_voice_sings_the_transposed_melody(svc, example):
    """Output pitch (fcpe on the output) follows the input's pitch moved by the transpose."""
    wav, sr = example
    track = get_predictor("fcpe", hop_length=svc.hop_length, sampling_rate=svc.sample_rate)
    src = svc.slice_inference(wav, sr, "flite_rms", transpose=-7, f0_predictor="fcpe")
    from svc_core.audio import resample

    f0_in, uv_in = track.compute_f0_uv(resample(wav, sr, svc.sample_rate))
    f0_out, uv_out = track.compute_f0_uv(src)
    n = min(len(f0_in), len(f0_out))
    both = (np.asarray(uv_in[:n]) > 0.5) & (np.asarray(uv_out[:n]) > 0.5)
    assert both.mean() > 0.4
    cents = 1200 * np.log2(np.asarray(f0_out[:n])[both] / (np.asarray(f0_in[:n])[both] * 2 ** (-7 / 12)))
    assert np.median(np.abs(cents)) < 30 and np.mean(np.abs(cents) < 50) > 0.8


def test_sovits_starter_loads_with_the_shared_encoder(example):
    """voices/starter-sovits ships no encoder file: phonevec256 is found in voices/starter."""
    svc = load_voice(STARTER_SOVITS)
    wav, sr = example
    out = svc.slice_inference(wav[: sr * 2], sr, "fest_ked", f0_predictor="fcpe")
    assert np.isfinite(out).all() and len(out) > 0


def test_page_offers_the_starter_voices_first(tmp_path):
    from svc_core.ui.models import ModelLibrary

    library = ModelLibrary(tmp_path / "no-models", tmp_path / "uploads", shipped=list(PACKAGES))
    entries = library.folder_entries()
    assert [e.key for e in entries[:2]] == ["starter", "starter-sovits"]
    assert sorted(entries[0].speakers) == sorted(STARTER_VOICE_IDS)
    assert entries[0].cluster_path is None  # no retrieval index: the posteriorgram has no speaker to pull towards
    assert entries[0].model_path.name.startswith("W_")


def test_examples_are_described():
    doc = json.loads((REPO_ROOT / "examples" / "examples.json").read_text(encoding="utf-8"))
    assert all((REPO_ROOT / "examples" / item["file"]).is_file() for item in doc)
