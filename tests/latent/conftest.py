"""Fixtures for the latent-map tests: real encoders (the shipped phonevec256.pt), the starter WORLD voice, a small
random-weight so-vits voice on phonevec256 with a real k-means file, and a two-speaker dataset folder."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from latent_factories import CLIPS_PER_SPEAKER, K_CLUSTERS, SPEAKERS, SR, STARTER, phrase


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    """<speaker>/<clip>.wav: two speakers, two 2 s clips each."""
    root = tmp_path_factory.mktemp("latent-dataset")
    for s, (speaker, factor) in enumerate(SPEAKERS.items()):
        (root / speaker).mkdir()
        for i in range(CLIPS_PER_SPEAKER):
            sf.write(root / speaker / f"clip{i}.wav", phrase(factor, seed=10 * s + i), SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def input_wav() -> np.ndarray:
    return phrase(1.0, seed=99, seconds=1.5)


@pytest.fixture(scope="session")
def starter_svc():
    """The shipped starter voice (WORLD synthesizer, phoneppg42 encoder from phonevec256.pt)."""
    from svc_core.pipeline import Svc

    return Svc(STARTER / "W_5000.pth", STARTER / "config.json")


@pytest.fixture(scope="session")
def phonevec256():
    from svc_core.encoders import get_encoder

    return get_encoder("phonevec256")


@pytest.fixture(scope="session")
def sovits_voice(tmp_path_factory, phonevec256, dataset_dir) -> dict:
    """A small random-weight so-vits voice on phonevec256 (speakers alto, bass) and a k-means file built from the
    dataset's phonevec256 frames (K_CLUSTERS centres per speaker)."""
    from factories import make_upstream_checkpoint
    from svc_core.latent.collect import FrameLabeller, dataset_frames
    from svc_core.retrieval import save_kmeans, train_kmeans

    out = tmp_path_factory.mktemp("latent-voice")
    g, config = make_upstream_checkpoint(out, speech_encoder="phonevec256", speakers={"alto": 0, "bass": 1},
                                         n_speakers=2, release=True)
    frames = dataset_frames(dataset_dir, FrameLabeller(phonevec256, phones=False))
    centres = {spk: train_kmeans(frames.features[frames.speaker == spk], K_CLUSTERS, seed=0) for spk in SPEAKERS}
    kmeans = out / "kmeans_8.pt"
    save_kmeans(kmeans, centres)
    return {"model": g, "config": config, "kmeans": kmeans, "centres": centres}


@pytest.fixture()
def ctx(tmp_path, dataset_dir):
    """The Latent map tab's context: a models folder with the starter voice and its dataset/."""
    from svc_core.ui.latent_tab import LatentTabContext
    from svc_core.ui.models import ModelLibrary
    from svc_core.ui.voice_cache import VoiceCache

    voice = tmp_path / "models" / "starter"
    voice.mkdir(parents=True)
    for name in ("W_5000.pth", "config.json", "phonevec256.pt"):
        os.symlink(STARTER / name, voice / name)
    shutil.copytree(dataset_dir, voice / "dataset")
    library = ModelLibrary(tmp_path / "models", tmp_path / "uploads")
    return LatentTabContext(library, VoiceCache(1), tmp_path / "work")
