"""Fixtures for the tunnel tests: a throwaway sshd on 127.0.0.1 and a tiny voice for the app."""
from __future__ import annotations

import os

import pytest

from svc_core.ui import offline

offline.apply()  # before gradio / gradio_client are imported


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    from tunnel.sshd import start_sshd

    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tunnel_voice(tmp_path_factory):
    """A 1-speaker vec256l9 voice (random weights) + encoder weights in $SVC_PRETRAIN_DIR + a 1.5 s clip."""
    import soundfile as sf

    from audio_factories import sung_phrase
    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint

    root = tmp_path_factory.mktemp("tunnel-voice")
    make_upstream_checkpoint(root / "models" / "demo-voice", speech_encoder="vec256l9", n_speakers=1, seed=7,
                             speakers={"alto": 0})
    make_contentvec_checkpoint(root / "pretrain" / "checkpoint_best_legacy_500.pt", final_dim=256, seed=3)
    previous = os.environ.get("SVC_PRETRAIN_DIR")
    os.environ["SVC_PRETRAIN_DIR"] = str(root / "pretrain")
    clip = root / "clip.wav"
    sf.write(clip, sung_phrase(1.5, gap_every=1.0, gap=0.5), 44100, subtype="PCM_16")
    yield root, clip
    if previous is None:
        os.environ.pop("SVC_PRETRAIN_DIR", None)
    else:
        os.environ["SVC_PRETRAIN_DIR"] = previous
