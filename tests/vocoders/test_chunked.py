"""Chunked and span decoding of the mel vocoder give the samples of one whole call."""
from __future__ import annotations

import pytest
import torch

from svc_core.noise import TorchNoise
from svc_core.vocoders import load_mel_vocoder
from vocoder_factories import make_vocoder

TOL = 1e-4
FRAMES = 150


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory):
    return load_mel_vocoder(make_vocoder(tmp_path_factory.mktemp("voc"), seed=3))


@pytest.fixture(scope="module")
def inputs():
    """mel [2, T, 128] (log values around -5), f0 [2, T] Hz with an unvoiced stretch across chunk borders."""
    gen = torch.Generator().manual_seed(0)
    mel = torch.randn(2, FRAMES, 128, generator=gen) - 5
    f0 = 120 + 300 * torch.rand(2, FRAMES, generator=gen)
    f0[:, 40:60] = 0
    return mel, f0


def _decode(vocoder, mel, f0, **kw):
    return vocoder.decode(mel, f0, noise=TorchNoise.seeded(11), **kw)


@pytest.fixture(scope="module")
def whole(vocoder, inputs):
    return _decode(vocoder, *inputs)


@pytest.mark.parametrize("chunk", [16, 37, 64])
def test_chunks_give_the_same_samples(vocoder, inputs, whole, chunk):
    chunked = _decode(vocoder, *inputs, chunk_frames=chunk)
    assert chunked.shape == whole.shape == (2, FRAMES * vocoder.hop_size)
    assert float((chunked - whole).abs().max()) < TOL
    assert float(whole.abs().max()) > 0.05


@pytest.mark.parametrize("span, chunk", [((30, 97), 0), ((30, 97), 20), ((0, 1), 0), ((149, 150), 16)])
def test_span_is_that_stretch_of_the_whole(vocoder, inputs, whole, span, chunk):
    hop = vocoder.hop_size
    part = _decode(vocoder, *inputs, chunk_frames=chunk, span=span)
    assert part.shape == (2, (span[1] - span[0]) * hop)
    assert float((part - whole[:, span[0] * hop:span[1] * hop]).abs().max()) < TOL


def test_context_is_needed(vocoder, inputs, whole, monkeypatch):
    """With too little context the chunk borders show, so the equality above is not luck."""
    monkeypatch.setattr(vocoder, "context_frames", lambda: 2)
    chunked = _decode(vocoder, *inputs, chunk_frames=32)
    assert float((chunked - whole).abs().max()) > 1e-3


def test_rng_left_as_one_draw_leaves_it(vocoder, inputs):
    """Chunked draws consume torch's RNG exactly as the single upstream draw does (the next draw is equal)."""
    mel, f0 = inputs
    after = []
    for chunk in (0, 48):
        gen = torch.Generator().manual_seed(5)
        vocoder.decode(mel, f0, noise=TorchNoise(gen), chunk_frames=chunk)
        after.append(torch.randn(4, generator=gen))
    assert torch.equal(after[0], after[1])


def test_f0_shorter_than_mel_is_refused(vocoder, inputs):
    mel, f0 = inputs
    with pytest.raises(ValueError, match="f0 has 100 frames"):
        vocoder.decode(mel, f0[:, :100])


def test_f0_with_trailing_axis_and_extra_frames(vocoder, inputs, whole):
    """Upstream passes f0 [B, T', 1] and cuts it to the mel's frames."""
    mel, f0 = inputs
    longer = torch.cat([f0, f0[:, :5]], dim=1)[..., None]
    assert float((_decode(vocoder, mel, longer) - whole).abs().max()) == 0
