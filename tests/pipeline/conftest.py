"""A small but complete voice for end-to-end tests: a vec256l9 so-vits model + a ContentVec-layout encoder,
both in the upstream on-disk layout with random weights, and a sung test clip."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from audio_factories import sung_phrase
from encoder_factories import make_contentvec_checkpoint
from factories import make_upstream_checkpoint


@dataclass
class Voice:
    model: Path
    config: Path
    encoder: Path
    clip: Path


@pytest.fixture(scope="session")
def voice(tmp_path_factory) -> Voice:
    root = tmp_path_factory.mktemp("voice")
    g_path, config_path = make_upstream_checkpoint(
        root / "model", speech_encoder="vec256l9", n_speakers=3, seed=7,
        speakers={"alto": 0, "tenor": 1, "bass": 2})
    encoder = make_contentvec_checkpoint(root / "pretrain" / "checkpoint_best_legacy_500.pt", final_dim=256, seed=3)
    clip = root / "phrase.wav"
    sf.write(clip, sung_phrase(4.0), 44100, subtype="PCM_16")
    return Voice(g_path, config_path, encoder, clip)


@pytest.fixture(scope="module")
def svc(voice):
    """The voice loaded once per test module."""
    from svc_core import Svc

    return Svc(voice.model, voice.config, encoder_path=str(voice.encoder))


@pytest.fixture(scope="module")
def clip(voice):
    """The voice's test clip as (samples, sample rate)."""
    from svc_core.audio import load_audio

    return load_audio(voice.clip)
