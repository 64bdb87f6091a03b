"""The NSF-HiFiGAN enhancer (spec f.6): rates, f0 re-timing, round trip; and its resampler against torchaudio's."""
from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import math
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from svc_core.noise import TorchNoise
from svc_core.resample import sinc_resample
from svc_core.vocoders import load_mel_vocoder
from svc_core.vocoders.enhancer import Enhancer, adaptive_sample_rate
from vocoder_factories import make_vocoder

SR = 44100
HOP = 512
N = 86 * HOP  # samples: a whole number of frames


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory):
    return load_mel_vocoder(make_vocoder(tmp_path_factory.mktemp("voc"), seed=4))


@pytest.fixture(scope="module")
def tone():
    """A 220 Hz tone [N] and its f0 [N / HOP] (one value per hop)."""
    wav = (0.3 * np.sin(2 * np.pi * 220 * np.arange(N) / SR)).astype(np.float32)
    return wav, np.full(N // HOP, 220.0, np.float32)


@pytest.mark.parametrize("key, rate", [(0, 44100), (12, 88200), (1, 46700), (-12, 22000), (-1, 41600)])
def test_adaptive_rate(key, rate):
    """100 * round(44100 * 2**(key/12) / 100), half to even (-12: 220.5 -> 220)."""
    assert adaptive_sample_rate(SR, key) == rate


class _Spy:
    """The real vocoder, recording what decode was given."""

    def __init__(self, vocoder):
        self.vocoder, self.calls = vocoder, []

    def __getattr__(self, name):
        return getattr(self.vocoder, name)

    def decode(self, mel, f0, **kw):
        self.calls.append((mel, f0))
        return self.vocoder.decode(mel, f0, **kw)


def test_key0_round_trip(vocoder, tone):
    """Key 0 at 44.1 kHz: no resampling, the vocoder re-synthesises the input's own mel with its f0; same length."""
    wav, f0 = tone
    spy = _Spy(vocoder)
    out = Enhancer(spy).enhance(wav, SR, f0, HOP, noise=TorchNoise.seeded(0))
    assert isinstance(out, np.ndarray) and out.shape == wav.shape and out.dtype == np.float32
    mel, f0_used = spy.calls[0]
    assert torch.equal(mel, vocoder.extract(torch.from_numpy(wav)[None]))
    assert np.array_equal(f0_used.numpy()[0], np.full(mel.shape[1], 220.0, np.float32))
    direct = vocoder.decode(mel, f0_used, noise=TorchNoise.seeded(0))[0].numpy()
    assert np.array_equal(out, direct)
    assert np.isfinite(out).all() and np.abs(out).max() > 0.01


def test_adaptive_key_changes_the_vocoder_rate(vocoder, tone):
    """Key 12: the audio goes to the vocoder at 88.2 kHz (twice the frames) with f0 halved, and comes back at
    44.1 kHz with the input's length."""
    wav, f0 = tone
    spy = _Spy(vocoder)
    out = Enhancer(spy).enhance(torch.from_numpy(wav), SR, f0, HOP, adaptive_key=12, noise=TorchNoise.seeded(0))
    assert isinstance(out, torch.Tensor) and out.shape == (N,)
    mel, f0_used = spy.calls[0]
    assert mel.shape[1] == 2 * (N // HOP)
    assert np.allclose(f0_used.numpy(), 110.0)
    plan = Enhancer(vocoder).plan(N, SR, 12)
    assert (plan.adaptive_sr, plan.real_factor) == (88200, 0.5)
    key0 = Enhancer(vocoder).enhance(wav, SR, f0, HOP, noise=TorchNoise.seeded(0))
    assert np.abs(out.numpy() - key0).max() > 1e-3  # a different rendering, not the same one


def test_f0_retiming_follows_upstream(vocoder):
    """f0 on a 320-sample hop at 32 kHz, key 3: scaled by 44100 / adaptive_sr and interpolated onto the
    vocoder's 512-sample grid (numbers worked out by hand from upstream's formula)."""
    enh = Enhancer(vocoder)
    plan = enh.plan(32000, 32000, 3)
    assert plan.adaptive_sr == 52400  # 44100 * 2**(3/12) = 52444.8
    f0 = np.array([100.0, 200.0, 300.0, 0.0], np.float32)  # at 0, 10, 20, 30 ms
    out = enh.retime_f0(f0, 32000, 320, plan)
    k = 44100 / 52400
    t = 512 / 44100 * np.arange(plan.f0_frames)  # vocoder frame times, in the input's time scaled by k
    expected = np.interp(t, np.array([0, 0.01, 0.02, 0.03]) / k, f0 * np.float32(k))
    assert out.dtype == np.float32 and np.allclose(out, expected, atol=1e-4)
    assert out[-1] == 0.0 and out[0] == pytest.approx(100 * k, rel=1e-6)


def _torchaudio_resampler():
    """torchaudio's sinc resampler, taken from its source file: its package import fails with this torch (the
    compiled extension does not match), but these two functions are plain torch."""
    spec = importlib.machinery.PathFinder.find_spec("torchaudio")  # the files on sys.path, not sys.modules: other
    # tests may have put svc_core.torchaudio_compat's stand-in (no __spec__) there
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchaudio is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "functional" / "functional.py"
    tree = ast.parse(path.read_text())
    wanted = {"_get_sinc_resample_kernel", "_apply_sinc_resample_kernel"}
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    if len(funcs) != 2:
        pytest.skip("torchaudio's resampler functions were not found in its source")
    ns = {"torch": torch, "math": math, "warnings": warnings, "Optional": typing.Optional,
          "Tensor": torch.Tensor, "_CPU": torch.device("cpu")}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), str(path), "exec"), ns)

    def resample(wav, orig, new, width):
        gcd = math.gcd(orig, new)
        kernel, w = ns["_get_sinc_resample_kernel"](orig, new, gcd, width)
        return ns["_apply_sinc_resample_kernel"](wav, orig, new, gcd, kernel, w)
    return resample


@pytest.mark.parametrize("orig, new", [(44100, 46700), (44100, 88200), (46700, 44100), (44100, 22000)])
def test_resampler_matches_torchaudio_width_128(orig, new):
    """Upstream's Resample(..., lowpass_filter_width=128) and sinc_resample(zero_crossings=128) are bit-equal."""
    reference = _torchaudio_resampler()
    wav = torch.randn(1, 9000, generator=torch.Generator().manual_seed(0)) * 0.3
    ours = sinc_resample(wav, orig, new, zero_crossings=128)
    theirs = reference(wav, orig, new, 128)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)


def test_extract_resamples_other_rates(vocoder):
    """extract(audio, sample_rate=22050) takes the mel of the audio resampled to 44.1 kHz (upstream Vocoder.extract)."""
    wav = torch.randn(1, 11025, generator=torch.Generator().manual_seed(2)) * 0.1
    got = vocoder.extract(wav, sample_rate=22050)
    want = vocoder.extract(sinc_resample(wav, 22050, SR, zero_crossings=128))
    assert got.shape == (1, 43, 128) and torch.equal(got, want)


@pytest.mark.parametrize("key", [0, 1, -1])
def test_enhance_piece_fits_the_input_and_cuts_the_span(vocoder, tone, key):
    """The pipeline's entry: exactly the span's samples, taken from the enhanced audio fitted to the input length
    as upstream's slice_inference does (centred zero padding when shorter, the end cut when longer)."""
    wav, f0 = tone
    enh = Enhancer(vocoder)
    full = enh.enhance(wav, SR, f0, HOP, adaptive_key=key, noise=TorchNoise.seeded(3), chunk_frames=32)
    piece = enh.enhance_piece(wav, torch.from_numpy(f0)[None], HOP, key, TorchNoise.seeded(3), span=(10, 50),
                              chunk_frames=32)
    assert piece.shape == (40 * HOP,)
    missing = max(0, N - len(full))
    fitted = np.pad(full, (missing // 2, missing - missing // 2))[:N]
    assert np.array_equal(piece, fitted[10 * HOP:50 * HOP])
    assert len(enh.enhance_piece(wav, f0, HOP, key, TorchNoise.seeded(3))) == N
