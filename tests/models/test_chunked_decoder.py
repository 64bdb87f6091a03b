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


def _inputs(model, seed: int, frames: int, g_frames: int):
    """Random z [1, Z, T], f0 [1, T] in 150..250 Hz, g [1, G, g_frames] (per-frame g: speaker mixes)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(1, model.inter_channels, frames, generator=gen)
    f0 = 150 + 100 * torch.rand(1, frames, generator=gen)
    return z, f0, torch.randn(1, model.dec.cond.in_channels, g_frames, generator=gen)


@pytest.mark.parametrize("chunk", [16, 40, 97])
def test_chunks_give_the_same_samples(model, chunk):
    dec = model.dec
    frames = 230
    z, f0, g = _inputs(model, 0, frames, frames)
    f0[:, 50:70] = 0  # an unvoiced stretch across a chunk border
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


def test_chunk_spans_tile_the_range():
    from svc_core.models.nsf_hifigan import chunk_spans

    assert chunk_spans(300, 0, 16) == [(0, 300, 0, 300)]
    spans = chunk_spans(300, 64, 16, start=43, stop=257)
    assert [s[:2] for s in spans] == [(43, 107), (107, 171), (171, 235), (235, 257)]
    assert spans[0][2:] == (27, 123) and spans[-1][2:] == (219, 273)  # context, clipped to the input
    assert chunk_spans(300, 0, 16, start=43, stop=257) == [(43, 257, 27, 273)]
    with pytest.raises(ValueError):
        chunk_spans(300, 64, 16, start=200, stop=100)
    # buckets: widths become multiples of 32 with more context (left first), keeping the same kept frames
    bucketed = chunk_spans(300, 64, 16, start=43, stop=257, bucket=32)
    assert [s[:2] for s in bucketed] == [s[:2] for s in spans]
    assert [(lo, hi) for *_, lo, hi in bucketed] == [(27, 123), (91, 187), (155, 251), (209, 273)]
    assert chunk_spans(40, 64, 16, bucket=32) == [(0, 40, 0, 40)]  # the whole input stays whole
    assert chunk_spans(50, 0, 16, start=10, stop=40, bucket=32) == [(10, 40, 0, 50)]  # capped by the input


@pytest.mark.parametrize("chunk", [0, 40])
def test_span_decodes_that_stretch_of_the_whole(model, chunk):
    """A span decodes only its frames (plus context) and gives the samples of that stretch of the whole decode."""
    dec = model.dec
    frames = 220
    z, f0, g = _inputs(model, 5, frames, 1)
    whole = _decode(dec, z, f0, g, 0)
    torch.manual_seed(7)
    decoded = []
    original = dec.decode
    dec.decode = lambda x, *a: decoded.append(x.shape[-1]) or original(x, *a)
    try:
        with torch.inference_mode():
            part = dec(z, f0, g, chunk_frames=chunk, span=(37, 181))
    finally:
        del dec.decode
    assert part.shape == (1, 1, (181 - 37) * dec.upp)
    assert float((part - whole[..., 37 * dec.upp:181 * dec.upp]).abs().max()) < 1e-5
    from svc_core.models.nsf_hifigan import SHAPE_BUCKET, chunk_spans

    plan = chunk_spans(frames, chunk, dec.context_frames(), 37, 181, bucket=SHAPE_BUCKET)
    assert decoded == [hi - lo for _, _, lo, hi in plan] and all(n % SHAPE_BUCKET == 0 for n in decoded)
    if chunk == 0:  # 144 frames + 2 x 16 of context = 176, widened to 192
        assert decoded == [192]


def test_pipeline_skips_the_padding_frames(tmp_path):
    """The slice padding is cut from the output, so the vocoder does not decode it: the kept samples equal those
    of a full decode, and fewer frames go through the vocoder."""
    from audio_factories import sung_phrase
    from svc_core import Svc
    from svc_core.encoders import get_encoder
    from svc_core.options import ConvertOptions
    from svc_core.timing import StageTimes
    from encoder_factories import make_contentvec_checkpoint

    g, c = make_upstream_checkpoint(tmp_path / "v", ssl_dim=64, speech_encoder="vec768l12", seed=4)
    svc = Svc(g, c, encoder=get_encoder("vec768l12", make_contentvec_checkpoint(tmp_path / "cv.pt")))
    dec = svc.model.dec
    frames = []
    original = dec.decode
    dec.decode = lambda x, *a: frames.append(x.shape[-1]) or original(x, *a)
    segment = np.pad(sung_phrase(2.0), (22050, 22050))  # one piece padded by 0.5 s each side, as the slicer's
    trim = 22050  # samples at 44.1 kHz
    for loudness in (1.0, 0.5):
        opts = ConvertOptions(f0_predictor="pm", loudness_mix=loudness, decoder_chunk_frames=0)
        frames.clear()
        full = svc.infer_piece(segment, 44100, 0, opts, StageTimes())
        full_frames = sum(frames)
        frames.clear()
        kept = svc.infer_piece(segment, 44100, 0, opts, StageTimes(), trim=trim)
        assert kept.shape == (len(full) - 2 * trim,)
        assert np.abs(kept - full[trim:-trim]).max() < 1e-5
        if loudness == 1.0:  # 43 frames of padding each side, only 16 (+ up to 31, see SHAPE_BUCKET) decoded
            assert sum(frames) <= full_frames - 2 * (trim // 512 - dec.context_frames()) + 31
        else:  # the loudness envelope needs the whole output
            assert sum(frames) == full_frames
