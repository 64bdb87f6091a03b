"""Opt-in reduced precision (svc_core.precision): checks, messages, and what bf16 does to the audio and features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factories import make_upstream_checkpoint
from svc_core.errors import OptionError
from svc_core.precision import available_precisions, check_precision, cpu_has_int8_dot, cpu_has_native_bf16

NATIVE_BF16 = cpu_has_native_bf16()


def test_flags_are_read_from_cpuinfo(tmp_path):
    with_bf16 = tmp_path / "a"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512vl\n")
    without = tmp_path / "b"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512vl\n")
    assert cpu_has_native_bf16(str(with_bf16)) and not cpu_has_native_bf16(str(without))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))
    assert not cpu_has_int8_dot(str(with_bf16)) and not cpu_has_int8_dot(str(tmp_path / "missing"))
    vnni = tmp_path / "c"
    vnni.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    arm = tmp_path / "d"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd aes pmull sha1 sha2 crc32 atomics asimddp\n")
    assert cpu_has_int8_dot(str(vnni)) and cpu_has_int8_dot(str(arm)) and not cpu_has_native_bf16(str(arm))


def test_checks_and_messages(monkeypatch):
    cpu = torch.device("cpu")
    assert check_precision("fp32", cpu) is None
    with pytest.raises(OptionError, match="one of fp32, bf16, fp16"):
        check_precision("int4", cpu)
    with pytest.raises(OptionError, match="fp16 is for CUDA GPUs"):
        check_precision("fp16", cpu)
    monkeypatch.setattr("svc_core.precision.cpu_has_native_bf16", lambda: False)
    with pytest.raises(OptionError, match="AVX512-BF16 or AMX"):
        check_precision("bf16", cpu)
    assert available_precisions("cpu") == ["fp32"]
    monkeypatch.setattr("svc_core.precision.cpu_has_native_bf16", lambda: True)
    assert check_precision("bf16", cpu) is torch.bfloat16 and available_precisions("cpu") == ["fp32", "bf16"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from svc_core.checkpoint import load_synthesizer

    g, c = make_upstream_checkpoint(tmp_path_factory.mktemp("prec"), n_speakers=1, seed=6)
    return load_synthesizer(g, c)


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_bf16_vocoder_runs_in_bf16_and_stays_close(model):
    """The audio is float32, differs from fp32 (so bf16 really ran) but only by bf16 rounding; the NSF source
    keeps its float32 phase (else the difference would be of the order of the signal)."""
    gen = torch.Generator().manual_seed(0)
    frames = 120
    inputs = dict(c=torch.randn(1, model.ssl_dim, frames, generator=gen), f0=180 + 40 * torch.rand(1, frames, generator=gen),
                  uv=torch.ones(1, frames), g=torch.LongTensor([[0]]), noise_scale=0.0)
    with torch.inference_mode():
        ref, _ = model.infer(**inputs)
        low, _ = model.infer(**inputs, vocoder_dtype=torch.bfloat16)
    assert low.dtype == torch.float32 and low.shape == ref.shape
    diff = float((low - ref).abs().max())
    assert 1e-5 < diff < 0.05 * float(ref.abs().max())


def test_pipeline_option_and_onnx_refusal(tmp_path, monkeypatch):
    from audio_factories import sung_phrase
    from encoder_factories import make_contentvec_checkpoint
    from svc_core import Svc
    from svc_core.encoders import get_encoder

    g, c = make_upstream_checkpoint(tmp_path / "v", ssl_dim=64, speech_encoder="vec768l12", seed=4)
    svc = Svc(g, c, encoder=get_encoder("vec768l12", make_contentvec_checkpoint(tmp_path / "cv.pt")))
    wav = sung_phrase(1.5)
    if NATIVE_BF16:
        a = svc.slice_inference(wav, 44100, 0, f0_predictor="pm")
        b = svc.slice_inference(wav, 44100, 0, f0_predictor="pm", vocoder_precision="bf16")
        assert a.shape == b.shape and 0 < np.abs(a - b).max() < 0.05 * np.abs(a).max()
    monkeypatch.setattr("svc_core.precision.cpu_has_native_bf16", lambda: False)
    with pytest.raises(OptionError, match="AVX512-BF16"):  # refused before any work is done
        svc.slice_inference(wav, 44100, 0, f0_predictor="pm", vocoder_precision="bf16")
    assert svc.last_times.seconds.get("f0") is None


def test_encoder_precision_messages(monkeypatch):
    cpu = torch.device("cpu")
    with pytest.raises(OptionError, match="encoder_precision int8 is not a torch mode.*--int8"):
        check_precision("int8", cpu, option="encoder_precision")
    with pytest.raises(OptionError, match="encoder_precision fp16 is for CUDA GPUs"):
        check_precision("fp16", cpu, option="encoder_precision")
    monkeypatch.setattr("svc_core.precision.cpu_has_native_bf16", lambda: False)
    with pytest.raises(OptionError, match="encoder_precision bf16 needs a CPU with AVX512-BF16"):
        check_precision("bf16", cpu, option="encoder_precision")


@pytest.fixture(scope="module")
def contentvec_voice(tmp_path_factory):
    from encoder_factories import make_contentvec_checkpoint
    from svc_core import Svc
    from svc_core.encoders import get_encoder

    root = tmp_path_factory.mktemp("encprec")
    g, c = make_upstream_checkpoint(root / "v", ssl_dim=64, speech_encoder="vec768l12", seed=4)
    encoder_file = make_contentvec_checkpoint(root / "cv.pt")
    return Svc(g, c, encoder=get_encoder("vec768l12", encoder_file)), encoder_file


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_bf16_encoder_features_stay_close(contentvec_voice):
    """A torch content encoder under bf16 autocast: float32 features of the same shape, different from float32
    (so bf16 really ran), within bf16 rounding; the conversion with them differs from fp32 only slightly and the
    per-input cache keeps the two apart."""
    from audio_factories import sung_phrase

    svc, _ = contentvec_voice
    wav16 = torch.from_numpy(sung_phrase(2.0, sr=16000))
    ref, low = svc.encoder.encode(wav16), svc.encoder.encode(wav16, "bf16")
    assert low.dtype == torch.float32 and low.shape == ref.shape
    rel = float((low - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
    assert 1e-4 < rel < 0.05
    wav = sung_phrase(1.5)
    a = svc.slice_inference(wav, 44100, 0, f0_predictor="pm")
    b = svc.slice_inference(wav, 44100, 0, f0_predictor="pm", encoder_precision="bf16")
    again = svc.slice_inference(wav, 44100, 0, f0_predictor="pm")  # from the cache: the fp32 units, not bf16's
    assert svc.last_times.seconds.get("encoder") is None
    assert np.array_equal(a, again) and a.shape == b.shape
    assert 0 < np.abs(a - b).max() < 0.05 * np.abs(a).max()


def test_encoder_precision_refusals(contentvec_voice, tmp_path, monkeypatch):
    """bf16 on a CPU without it, and any reduced precision for an encoder on ONNX Runtime: refused before work."""
    from audio_factories import sung_phrase
    from svc_core import Svc
    from svc_core.onnx import OnnxEncoder, export_encoder

    svc, encoder_file = contentvec_voice
    wav = sung_phrase(1.0)
    onnx_file = tmp_path / "vec768l12.onnx"
    export_encoder("vec768l12", encoder_file, onnx_file)
    on_ort = Svc(svc.model_path, svc.config_path, encoder=OnnxEncoder(onnx_file, device="cpu", threads=1))
    with pytest.raises(OptionError, match="this vec768l12 encoder is an ONNX file"):
        on_ort.slice_inference(wav, 44100, 0, f0_predictor="pm", encoder_precision="bf16")
    assert on_ort.last_times.seconds.get("f0") is None
    with pytest.raises(OptionError, match="ONNX file"):
        on_ort.encoder.encode(torch.zeros(16000), "bf16")
    monkeypatch.setattr("svc_core.precision.cpu_has_native_bf16", lambda: False)
    with pytest.raises(OptionError, match="encoder_precision bf16 needs a CPU"):
        svc.slice_inference(wav, 44100, 0, f0_predictor="pm", encoder_precision="bf16")
    assert svc.last_times.seconds.get("f0") is None
