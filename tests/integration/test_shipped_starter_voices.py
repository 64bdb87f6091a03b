"""The starter voices shipped in voices/starter: files match their manifest, fit the size budget, load through
the normal loaders and convert an example clip to every speaker."""
from __future__ import annotations

import json

import numpy as np
import pytest

from svc_core.audio import load_audio
from svc_core.starter.evaluation import load_voice
from svc_core.starter.package import MANIFEST, verify_package
from svc_core.starter.voices import STARTER_VOICE_IDS
from svc_core.ui.settings import REPO_ROOT, STARTER_VOICES

SIZE_BUDGET_BYTES = 60 * 10**6  # models + encoder (issue #4)


@pytest.fixture(scope="module")
def manifest() -> dict:
    path = STARTER_VOICES / MANIFEST
    assert path.is_file(), "voices/starter is not in the repo; build it with `make starter-voices`"
    return json.loads(path.read_text(encoding="utf-8"))


def test_files_match_manifest_and_budget(manifest):
    assert verify_package(STARTER_VOICES) == []
    assert sorted(manifest["speakers"]) == sorted(STARTER_VOICE_IDS)
    assert sum(f["bytes"] for f in manifest["files"].values()) <= SIZE_BUDGET_BYTES
    assert manifest["encoder_file"] in manifest["files"] and manifest["speech_encoder"] == "phonevec256"


@pytest.fixture(scope="module")
def svc(manifest):
    return load_voice(STARTER_VOICES)


@pytest.mark.parametrize("speaker", STARTER_VOICE_IDS)
def test_example_converts_to_every_speaker(svc, speaker):
    wav, sr = load_audio(REPO_ROOT / "examples" / "singing_slt.flac")
    out = svc.slice_inference(wav, sr, speaker, transpose=0, f0_predictor="fcpe")
    assert abs(len(out) / svc.sample_rate - len(wav) / sr) < 0.05
    assert np.isfinite(out).all() and 0.01 < float(np.sqrt(np.mean(out ** 2))) < 0.5 and np.abs(out).max() <= 1.0


def test_page_offers_the_starter_voices_first(tmp_path):
    from svc_core.ui.models import ModelLibrary

    library = ModelLibrary(tmp_path / "no-models", tmp_path / "uploads", shipped=[STARTER_VOICES])
    first = library.folder_entries()[0]
    assert first.key == "starter" and sorted(first.speakers) == sorted(STARTER_VOICE_IDS)
    assert first.cluster_path is not None


def test_examples_are_described():
    doc = json.loads((REPO_ROOT / "examples" / "examples.json").read_text(encoding="utf-8"))
    assert all((REPO_ROOT / "examples" / item["file"]).is_file() for item in doc)
