"""RvcSynthesizer.infer beyond the parity calls: chunked and span decoding, speakers and mixes, draw order."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rvc_factories import make_hparams, make_random_net

from svc_core.errors import ModelError
from svc_core.noise import RecordedNoise, TorchNoise

FRAMES = 120
CHUNK_TOL = 1e-5


def _inputs(hp, frames: int = FRAMES, seed: int = 3):
    gen = torch.Generator().manual_seed(seed)
    phone = torch.randn(1, frames, hp.content_dim, generator=gen)
    hz = 150 * 2 ** torch.sin(torch.arange(frames) / 20.0)[None]
    hz[:, 40:55] = 0
    from svc_core.rvc.voice import coarse_pitch_torch

    return phone, torch.tensor([frames]), coarse_pitch_torch(hz), hz


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return make_random_net(make_hparams("v2", "40k", speakers=3), seed=5).eval()


def _infer(net, seed=11, **kw):
    phone, lengths, pitch, hz = _inputs(net.hp)
    g = net.speaker_embedding(torch.tensor([1]))
    with torch.no_grad():
        return net.infer(phone, lengths, pitch, hz, g, TorchNoise.seeded(seed), **kw)


def test_chunked_decoding_gives_the_same_samples(net):
    whole = _infer(net).o
    chunked = _infer(net, chunk_frames=40).o
    assert chunked.shape == whole.shape == (1, 1, FRAMES * net.hp.hop_length)
    assert float((chunked - whole).abs().max()) <= CHUNK_TOL


def test_chunks_bound_the_decoders_input(net):
    """Memory flat in length: with chunk_frames the decoder never sees more than chunk + context frames."""
    widths = []
    handle = net.dec.conv_pre.register_forward_hook(lambda _m, a, _o: widths.append(a[0].shape[-1]))
    try:
        _infer(net, chunk_frames=40)
    finally:
        handle.remove()
    context = net.dec.context_frames()
    assert len(widths) > 2 and max(widths) <= 40 + 2 * context + 32  # + the shape bucket


def test_span_decodes_that_stretch_only(net):
    whole = _infer(net).o
    part = _infer(net, span=(40, 90)).o
    hop = net.hp.hop_length
    assert part.shape[-1] == 50 * hop
    assert float((part - whole[..., 40 * hop:90 * hop]).abs().max()) <= CHUNK_TOL


def test_draw_order_is_rvcs(net):
    """randn prior [1, Z, T], rand [1, 1, 1] (phase), randn [1, T*hop, 1] (NSF noise) — nothing else."""
    shapes = []

    class Spy(TorchNoise):
        def randn(self, shape, device="cpu"):
            shapes.append(("randn", tuple(shape)))
            return super().randn(shape, device)

        def rand(self, shape, device="cpu"):
            shapes.append(("rand", tuple(shape)))
            return super().rand(shape, device)

    phone, lengths, pitch, hz = _inputs(net.hp)
    with torch.no_grad():
        net.infer(phone, lengths, pitch, hz, net.speaker_embedding(torch.tensor([0])), Spy(), chunk_frames=40)
    hop = net.hp.hop_length
    assert shapes == [("randn", (1, net.hp.inter_channels, FRAMES)), ("rand", (1, 1, 1)),
                      ("randn", (1, FRAMES * hop, 1))]


def test_speaker_mix_weights(net):
    one_hot = net.speaker_embedding(torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(one_hot, net.speaker_embedding(torch.tensor([1])))
    half = net.speaker_embedding(torch.tensor([1.0, 0.0, 1.0]))  # normalised to 0.5 / 0.5
    expected = (net.emb_g.weight[0] + net.emb_g.weight[2]) / 2
    assert torch.allclose(half[0, :, 0], expected, atol=1e-6)
    assert half.shape == (1, net.hp.gin_channels, 1)
    with pytest.raises(ModelError, match="3 weights"):
        net.speaker_embedding(torch.tensor([1.0, 0.0]))
    with pytest.raises(ModelError, match="out of range"):
        net.speaker_embedding(torch.tensor([3]))


def test_different_speakers_sound_different(net):
    phone, lengths, pitch, hz = _inputs(net.hp)
    outs = []
    for sid in (0, 2):
        with torch.no_grad():
            outs.append(net.infer(phone, lengths, pitch, hz, net.speaker_embedding(torch.tensor([sid])),
                                  RecordedNoise([np.zeros((1, 32, FRAMES)), np.zeros((1, 1, 1)),
                                                 np.zeros((1, FRAMES * 400, 1))])).o)
    assert float((outs[0] - outs[1]).abs().max()) > 1e-3
