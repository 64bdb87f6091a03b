"""Shared fixtures: a tiny real corpus (4 sentences x 2 voices, one WORLD variant each) built once per session."""
from __future__ import annotations

import shutil

import pytest

from svc_core.phonevec.corpus import Corpus, CorpusSettings, build_corpus
from svc_core.phonevec.model import PhoneVecConfig

TINY_VOICES = ("esp_m3", "flite_slt")
TINY_MODEL = PhoneVecConfig(dim=64, n_layers=2, n_heads=2, ff_dim=128, feature_layer=2, dropout=0.0)


def require_tts() -> None:
    missing = [b for b in ("espeak-ng", "flite") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Debian TTS programs missing: {', '.join(missing)}")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Sentences 0-3 (1 and 3 held out) x esp_m3, flite_slt, clean + one WORLD variant each."""
    require_tts()
    out = tmp_path_factory.mktemp("phonevec_corpus")
    return build_corpus(CorpusSettings(out=str(out), n_sentences=4, voices=TINY_VOICES, heldout_every=2, jobs=2))
