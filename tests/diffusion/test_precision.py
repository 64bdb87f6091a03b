"""Opt-in reduced precision of the diffusion stage: `diffusion_precision` (the denoiser under autocast) and
`vocoder_precision` applied to the NSF-HiFiGAN mel vocoder. Float32 stays exact; bf16 is close, not equal."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from diffusion_factories import make_diffusion_model
from svc_core.noise import TorchNoise
from svc_core.diffusion.stage import DiffusionStage
from svc_core.diffusion.wavenet import WaveNet
from svc_core.errors import OptionError
from svc_core.options import ConvertOptions
from svc_core.precision import cpu_has_native_bf16
from svc_core.timing import StageTimes
from vocoder_factories import make_vocoder

FRAMES = 96
BF16_EPS_TOL = 0.1  # bf16 keeps 8 bits of mantissa: eps of unit scale moves by a few 1e-2 through 20 layers


def test_option_is_validated():
    assert ConvertOptions().diffusion_precision == "fp32"
    with pytest.raises(OptionError, match="diffusion_precision must be one of fp32, bf16, fp16"):
        ConvertOptions(diffusion_precision="int8")


def test_cpu_refuses_fp16_and_names_the_option():
    stage = SimpleNamespace(device=torch.device("cpu"))
    with pytest.raises(OptionError, match="diffusion_precision fp16 is for CUDA"):
        DiffusionStage.dtypes(stage, ConvertOptions(diffusion_precision="fp16"))
    assert DiffusionStage.dtypes(stage, ConvertOptions()) == (None, None)
    # int8 is the ONNX backend's so-vits vocoder: the mel vocoder stays float32
    assert DiffusionStage.dtypes(stage, ConvertOptions(vocoder_precision="int8")) == (None, None)


def test_bf16_needs_a_native_bf16_cpu(monkeypatch):
    monkeypatch.setattr("svc_core.precision.cpu_has_native_bf16", lambda *a: False)
    stage = SimpleNamespace(device=torch.device("cpu"))
    with pytest.raises(OptionError, match="diffusion_precision bf16 needs a CPU with AVX512-BF16"):
        DiffusionStage.dtypes(stage, ConvertOptions(diffusion_precision="bf16"))


def test_cached_denoiser_in_bf16_is_close_and_float32():
    torch.manual_seed(0)
    net = WaveNet(in_dims=32, n_layers=4, n_chans=64, n_hidden=48).eval()
    torch.nn.init.normal_(net.output_projection.weight, std=0.05)
    x, cond = torch.randn(2, 1, 32, FRAMES), torch.randn(2, 48, FRAMES)
    t = torch.tensor([37, 5])
    with torch.inference_mode():
        ref = net(x, t, cond)
        assert torch.allclose(net.cached(cond)(x, t), ref, rtol=0, atol=1e-6)  # float32: forward's numbers
        low = net.cached(cond, torch.bfloat16)(x, t)
    assert low.dtype == torch.float32
    deviation = float((low - ref).abs().max())
    assert 0 < deviation < BF16_EPS_TOL * float(ref.abs().max())


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("prec")
    model, config = make_diffusion_model(root / "diffusion", n_spk=1, seed=2)
    vocoder = make_vocoder(root / "nsf_hifigan", seed=3)
    return DiffusionStage(model, config, vocoder_path=str(vocoder))


def _render(stage, **options):
    gen = torch.Generator().manual_seed(1)
    units = torch.randn(1, 768, FRAMES, generator=gen)
    f0 = torch.linspace(150.0, 400.0, FRAMES)[None]
    vol = torch.rand(1, FRAMES, generator=gen) * 0.2
    source = (0.3 * torch.sin(torch.arange(FRAMES * stage.vocoder.hop_size) * 0.05)).numpy().astype(np.float32)
    opts = ConvertOptions(shallow_diffusion=True, k_step=50, diffusion_method="dpm-solver++", diffusion_speedup=10,
                          **options)
    times = StageTimes()
    seen = {}
    mel = stage.mel

    def recording_mel(*args, **kw):
        seen["mel"] = mel(*args, **kw)
        return seen["mel"]

    stage.mel = recording_mel
    try:
        audio = stage.render(units, f0, vol, None, opts, TorchNoise.seeded(4), times, source, (10, 80), 32)
    finally:
        del stage.mel
    return seen["mel"], audio, times


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 is refused on CPUs without native bf16")
def test_stage_runs_the_denoiser_and_the_mel_vocoder_in_the_chosen_precision(stage):
    mel32, audio32, times = _render(stage)
    assert {"diffusion", "mel vocoder"} <= set(times.seconds)
    mel_d, audio_d, _ = _render(stage, diffusion_precision="bf16")
    mel_v, audio_v, _ = _render(stage, vocoder_precision="bf16")
    assert mel_d.dtype == torch.float32 and audio_d.dtype == np.float32 and audio_v.dtype == np.float32
    assert torch.equal(mel_v, mel32)  # vocoder_precision leaves the denoiser alone
    mel_dev = float((mel_d - mel32).abs().max())
    assert 0 < mel_dev < 0.5  # log-mel units; the mel spans ~10
    assert 0 < float(np.abs(audio_v - audio32).max()) < 0.05
    assert np.abs(audio_d - audio32).max() > 0  # the bf16 mel reaches the audio


def test_onnx_stage_refuses_reduced_precision():
    from svc_core.onnx.diffusion_stage import OnnxDiffusionStage

    stage = SimpleNamespace(device=torch.device("cpu"))
    with pytest.raises(OptionError, match="diffusion_precision bf16 is not available with diffusion on ONNX"):
        OnnxDiffusionStage.dtypes(stage, ConvertOptions(diffusion_precision="bf16"))
    with pytest.raises(OptionError, match="vocoder_precision bf16"):
        OnnxDiffusionStage.dtypes(stage, ConvertOptions(vocoder_precision="bf16"))
    assert OnnxDiffusionStage.dtypes(stage, ConvertOptions(vocoder_precision="int8")) == (None, None)
