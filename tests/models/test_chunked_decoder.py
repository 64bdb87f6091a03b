"""The vocoder decoded in chunks (with its receptive field as context) gives the whole-input audio."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factories import make_upstream_checkpoint
from svc_core.checkpoint import load_synthesizer


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    g, c = make_upstream_checkpoint(tmp_path_factory.mktemp("chunk"), n_speakers=2, seed=3)
    return load_synthesizer(g, c)


def _decode(dec, z, f0, g, chunk):
    torch.manual_seed(7)  # the source draws random numbers; same seed, same draws
    with torch.inference_mode():
        return dec(z, f0, g, chunk_frames=chunk)


@pytest.mark.parametrize("chunk", [16, 40, 97])
def test_chunks_give_the_same_samples(model, chunk):
    dec = model.dec
    gen = torch.Generator().manual_seed(0)
    frames = 230
    z = torch.randn(1, model.inter_channels, frames, generator=gen)
    f0 = 150 + 100 * torch.rand(1, frames, generator=gen)
    f0[:, 50:70] = 0  # an unvoiced stretch across a chunk border
    g = torch.randn(1, dec.cond.in_channels, frames, generator=gen)  # per-frame conditioning (speaker mixes)
    whole = _decode(dec, z, f0, g, 0)
    chunked = _decode(dec, z, f0, g, chunk)
    assert chunked.shape == whole.shape == (1, 1, frames * dec.upp)
    assert float((chunked - whole).abs().max()) < 1e-5


def test_context_is_the_receptive_field(model, monkeypatch):
    """With less context than context_frames() the chunk borders show (so the equality above is not luck)."""
    dec = model.dec
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(1, model.inter_channels, 200, generator=gen)
    f0 = 200 + 20 * torch.rand(1, 200, generator=gen)
    g = torch.randn(1, dec.cond.in_channels, 1, generator=gen)
    whole = _decode(dec, z, f0, g, 0)
    short = dec.context_frames() // 3
    monkeypatch.setattr(dec, "context_frames", lambda: short)
    assert float((_decode(dec, z, f0, g, 50) - whole).abs().max()) > 1e-3 * float(whole.abs().max())


def test_pipeline_default_chunking_changes_nothing(tmp_path):
    from audio_factories import sung_phrase
    from svc_core import Svc
    from svc_core.encoders import get_encoder
    from encoder_factories import make_contentvec_checkpoint

    g, c = make_upstream_checkpoint(tmp_path / "v", ssl_dim=64, speech_encoder="vec768l12", seed=4)
    enc = get_encoder("vec768l12", make_contentvec_checkpoint(tmp_path / "cv.pt"))
    svc = Svc(g, c, encoder=enc)
    wav = sung_phrase(4.0)  # one ~4 s piece: 345 + 2 x 43 frames, more than one 256-frame chunk
    a = svc.slice_inference(wav, 44100, 0, f0_predictor="pm")
    b = svc.slice_inference(wav, 44100, 0, f0_predictor="pm", decoder_chunk_frames=0)
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
