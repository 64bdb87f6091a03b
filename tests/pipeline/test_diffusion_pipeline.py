"""The second stage inside Svc on small upstream-layout files: shallow diffusion, second encoding, speaker mixes,
seeds, only-diffusion voices and the refusals (the numbers against upstream: tests/diffusion/test_e2e_parity.py)."""
from __future__ import annotations

import numpy as np
import pytest

from diffusion_factories import make_diffusion_model
from svc_core import Svc
from svc_core.errors import OptionError
from vocoder_factories import make_vocoder

SHORT = dict(f0_predictor="pm", slice_db=-40, k_step=30, diffusion_speedup=10)


@pytest.fixture(scope="module")
def parts(voice, tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion-voice")
    model, config = make_diffusion_model(root / "diffusion", encoder="vec256l9", n_spk=3, seed=2,
                                         speakers={"alto": 0, "tenor": 1, "bass": 2})
    vocoder = make_vocoder(root / "nsf_hifigan", seed=4)
    return model, config, vocoder


@pytest.fixture(scope="module")
def dsvc(voice, parts):
    model, config, vocoder = parts
    return Svc(voice.model, voice.config, encoder_path=str(voice.encoder), diffusion_model_path=model,
               diffusion_config_path=config, vocoder_path=vocoder)


def _clip(clip, seconds=1.5):
    wav, sr = clip
    return wav[: int(seconds * sr)], sr


def test_shallow_diffusion_changes_the_output_and_is_repeatable(dsvc, clip):
    wav, sr = _clip(clip)
    plain = dsvc.slice_inference(wav, sr, "alto", **SHORT)
    a = dsvc.slice_inference(wav, sr, "alto", shallow_diffusion=True, **SHORT)
    b = dsvc.slice_inference(wav, sr, "alto", shallow_diffusion=True, **SHORT)
    c = dsvc.slice_inference(wav, sr, "alto", shallow_diffusion=True, seed=7, **SHORT)
    assert a.shape == plain.shape and np.isfinite(a).all()
    assert not np.allclose(a, plain, atol=1e-3)
    assert np.array_equal(a, b)  # the draws of each piece come from a generator seeded with `seed`
    assert not np.allclose(a, c, atol=1e-6)
    assert {"diffusion", "mel vocoder"} <= set(dsvc.last_times.seconds)


def test_second_encoding_re_encodes_the_sovits_output(dsvc, clip):
    wav, sr = _clip(clip)
    calls = []
    encode = dsvc.encoder.encode

    def counting(wav16, precision="fp32"):
        calls.append(wav16.shape[-1])
        return encode(wav16, precision)

    dsvc.encoder.encode = counting
    dsvc.cache.clear()  # earlier tests cached this clip's units
    try:
        first = dsvc.slice_inference(wav, sr, "alto", shallow_diffusion=True, cache=False, **SHORT)
        n_plain = len(calls)
        second = dsvc.slice_inference(wav, sr, "alto", shallow_diffusion=True, second_encoding=True, cache=False,
                                      **SHORT)
    finally:
        dsvc.encoder.encode = encode
    assert len(calls) - n_plain == 2 * n_plain  # once for the input, once for the so-vits output, per piece
    assert not np.allclose(first, second, atol=1e-4)


def test_speaker_mix_reaches_the_diffusion_model(dsvc, clip):
    wav, sr = _clip(clip)
    alto = dsvc.slice_inference(wav, sr, "alto", shallow_diffusion=True, **SHORT)
    mixed = dsvc.slice_inference(wav, sr, {"alto": 0.5, "bass": 0.5}, shallow_diffusion=True, **SHORT)
    assert np.isfinite(mixed).all() and not np.allclose(alto, mixed, atol=1e-4)


def test_every_sampler_runs_in_the_pipeline(dsvc, clip):
    wav, sr = _clip(clip, 1.0)
    outs = {m: dsvc.slice_inference(wav, sr, "tenor", shallow_diffusion=True, diffusion_method=m, **SHORT)
            for m in ("dpm-solver++", "dpm-solver", "unipc", "pndm", "ddim", "ddpm")}
    assert all(np.isfinite(o).all() for o in outs.values())
    assert not np.allclose(outs["ddim"], outs["ddpm"], atol=1e-4)


def test_only_diffusion_voice(voice, parts, clip):
    model, config, vocoder = parts
    only = Svc(None, None, encoder_path=str(voice.encoder), diffusion_model_path=model, diffusion_config_path=config,
               vocoder_path=vocoder)
    assert only.speakers == ["alto", "tenor", "bass"] and only.sample_rate == 44100
    wav, sr = _clip(clip, 1.0)
    out = only.slice_inference(wav, sr, "bass", f0_predictor="pm", only_diffusion=True, diffusion_speedup=100)
    assert out.shape == (len(wav),) and np.isfinite(out).all()
    assert "synthesizer" not in only.last_times.seconds
    with pytest.raises(OptionError, match="diffusion model alone"):
        only.slice_inference(wav, sr, "bass", f0_predictor="pm")


def test_refusals_before_any_work(svc, dsvc, clip):
    wav, sr = _clip(clip, 1.0)
    with pytest.raises(OptionError, match="need a diffusion model"):
        svc.slice_inference(wav, sr, "alto", f0_predictor="pm", shallow_diffusion=True)
    with pytest.raises(OptionError, match="diffusion_method 'heun' is not a sampler"):
        dsvc.slice_inference(wav, sr, "alto", f0_predictor="pm", shallow_diffusion=True, diffusion_method="heun")
    with pytest.raises(OptionError, match="k_step is 2000 steps"):
        dsvc.slice_inference(wav, sr, "alto", f0_predictor="pm", shallow_diffusion=True, k_step=2000)
