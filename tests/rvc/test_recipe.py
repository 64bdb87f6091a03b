"""RVC voices on `Svc`: loading without config.json, option defaults and refusals, the production path
(seeded noise per segment, stages, progress, cancel), convert_file, and the hubert_base.pt lookup."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rvc_factories import make_rvc_model
from rvc_pipe_factories import AdaptedContentVec
from svc_core import cancel
from svc_core.encoders.registry import find_weights
from svc_core.errors import EncoderMismatchError, OptionError
from svc_core.pipeline import Svc

INDEX = "added_IVF26_Flat_nprobe_1_rvc_small_v2_40k_f0_v2.index"
SR_IN = 22050
MODEL_SR = 40000


def _tone(seconds: float = 1.5, sr: int = SR_IN) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t * 4)).astype(np.float32)


@pytest.fixture(scope="module")
def voice(parity_dir, shared_dir):
    models = parity_dir / "rvc" / "models"
    return Svc(models / "rvc_small_v2_40k_f0.pth", None, encoder=AdaptedContentVec(shared_dir, "v2"),
               cluster_path=models / INDEX)


def test_rvc_voice_loads_without_config_and_takes_rvc_defaults(voice):
    assert voice.family.name == "rvc" and voice.config_path is None and voice.sample_rate == MODEL_SR
    assert voice.option_defaults() == {"loudness_mix": 0.25, "cluster_ratio": 0.75}


class RecordingWatch(cancel.Watch):
    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, str, float]] = []
        self.plan: list = []

    def on_plan(self, pieces):
        self.plan = pieces

    def on_step(self, piece, stage, fraction):
        self.steps.append((piece, stage, fraction))


def test_production_conversion_is_seeded_timed_and_reports_progress(voice):
    steps = []
    wav = _tone()
    watch = RecordingWatch()
    voice.cache.clear()
    with cancel.watching(watch):
        out = voice.slice_inference(wav, SR_IN, 1, transpose=2, f0_predictor="pm",
                                    progress=lambda f, m: steps.append(f), decoder_chunk_frames=32)
    assert len(watch.plan) == 1 and not watch.plan[0][1]
    stages = set(voice.last_times.seconds)
    assert {"resample", "highpass", "f0", "encoder", "retrieval", "synthesizer", "vocoder", "loudness"} <= stages
    stages = [stage for _, stage, _ in watch.steps]
    assert stages[:3] == ["f0", "encoder", "synthesizer"] and stages[-1] == "vocoder"
    vocoder = [f for _, stage, f in watch.steps if stage == "vocoder"]
    assert len(vocoder) > 2 and vocoder == sorted(vocoder)  # reported per decoder chunk
    chunked = voice.slice_inference(wav, SR_IN, 1, transpose=2, f0_predictor="pm")
    np.testing.assert_allclose(out, chunked, rtol=0, atol=1e-5)  # chunk size does not change the audio
    out = chunked
    again = voice.slice_inference(wav, SR_IN, 1, transpose=2, f0_predictor="pm")
    np.testing.assert_array_equal(out, again)  # TorchNoise.seeded(opts.seed) per segment
    other = voice.slice_inference(wav, SR_IN, 1, transpose=2, f0_predictor="pm", seed=7)
    assert np.abs(out - other).max() > 0
    # RVC's output: 16 kHz frames of 10 ms, two per 20 ms content frame, minus the 1 s pads
    n16 = int(round(len(wav) * 16000 / SR_IN)) + 2 * 16000
    frames = min(n16 // 160, 2 * ((n16 - 400) // 320 + 1))
    assert out.shape == (frames * 400 - 2 * MODEL_SR,) and out.dtype == np.float32
    assert np.abs(out).max() <= 0.99 + 1e-6 and np.isfinite(out).all()
    assert steps == [1.0]


def test_speaker_mix_and_resample_sr(voice):
    wav = _tone(1.0)
    mixed = voice.slice_inference(wav, SR_IN, {"0": 0.5, "2": 0.5}, f0_predictor="pm")
    single = voice.slice_inference(wav, SR_IN, 0, f0_predictor="pm")
    assert mixed.shape == single.shape and np.abs(mixed - single).max() > 0
    low = voice.slice_inference(wav, SR_IN, 0, f0_predictor="pm", resample_sr=16000)
    assert abs(len(low) - len(single) * 16000 / MODEL_SR) <= 1


@pytest.mark.parametrize("option", [{"noise_scale": 0.8}, {"auto_predict_f0": True}, {"clip_seconds": 5.0},
                                    {"shallow_diffusion": True}])
def test_so_vits_options_are_refused_by_name(voice, option):
    with pytest.raises(OptionError, match=next(iter(option))):
        voice.slice_inference(_tone(0.5), SR_IN, 0, f0_predictor="pm", **option)


def test_index_rate_without_index_is_refused(parity_dir, shared_dir):
    svc = Svc(parity_dir / "rvc" / "models" / "rvc_small_v1_40k_f0.pth", None,
              encoder=AdaptedContentVec(shared_dir, "v1"))
    assert svc.option_defaults() == {"loudness_mix": 0.25}
    with pytest.raises(OptionError, match="index"):
        svc.slice_inference(_tone(0.5), SR_IN, 0, f0_predictor="pm", index_rate=0.5)


def test_v1_model_refuses_a_768_dim_encoder(parity_dir, shared_dir):
    with pytest.raises(EncoderMismatchError, match="256"):
        Svc(parity_dir / "rvc" / "models" / "rvc_small_v1_40k_f0.pth", None,
            encoder=AdaptedContentVec(shared_dir, "v2"))


def test_no_pitch_model_converts_and_refuses_f0_options(tmp_path, shared_dir):
    path = make_rvc_model(tmp_path / "nono.pth", version="v2", f0=False, speakers=2)
    svc = Svc(path, None, encoder=AdaptedContentVec(shared_dir, "v2"))
    assert not svc.model.has_f0
    out = svc.slice_inference(_tone(1.0), SR_IN, 0)  # f0_predictor stays at its default: not run
    assert out.size > 0 and np.isfinite(out).all() and "f0" not in svc.last_times.seconds
    for option in ({"transpose": 3}, {"protect": 0.2}, {"f0_predictor": "pm"}):
        with pytest.raises(OptionError, match=next(iter(option))):
            svc.slice_inference(_tone(0.5), SR_IN, 0, **option)


def test_cancel_stops_inside_the_synthesizer(voice):
    class StopAtSynthesizer(cancel.Watch):
        def on_step(self, piece, stage, fraction):
            if stage == "synthesizer":
                self.cancel("stopped by the test")

    with cancel.watching(StopAtSynthesizer()), pytest.raises(cancel.ConversionCancelled, match="by the test"):
        voice.slice_inference(_tone(), SR_IN, 0, f0_predictor="pm")
    assert "vocoder" not in voice.last_times.seconds


def test_convert_file_writes_at_the_output_rate(voice, tmp_path):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, _tone(1.0), SR_IN)
    result = voice.convert_file(src, dst, 0, f0_predictor="pm", resample_sr=32000)
    data, rate = sf.read(dst)
    assert rate == result.sample_rate == 32000 and len(data) == round(result.seconds * rate)
    expected = voice.slice_inference(_tone(1.0), SR_IN, 0, f0_predictor="pm", resample_sr=32000)
    assert len(data) == len(expected)


def test_hubert_base_pt_is_found_where_rvc_keeps_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SVC_PRETRAIN_DIR", raising=False)
    rvc_copy = tmp_path / "assets" / "hubert" / "hubert_base.pt"
    rvc_copy.parent.mkdir(parents=True)
    rvc_copy.write_bytes(b"x")
    assert find_weights("vec768l12") == "assets/hubert/hubert_base.pt"
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "hubert_base.pt").write_bytes(b"x")
    assert find_weights("vec256l9") == "pretrain/hubert_base.pt"
    (tmp_path / "pretrain" / "checkpoint_best_legacy_500.pt").write_bytes(b"x")
    assert find_weights("vec768l12") == "pretrain/checkpoint_best_legacy_500.pt"  # the so-vits name comes first
    assert find_weights("vec768l12", tmp_path / "assets" / "hubert") == str(rvc_copy)  # a folder holding it


def test_rerun_reuses_f0_and_features(voice):
    wav = _tone(1.0)
    voice.cache.clear()
    voice.slice_inference(wav, SR_IN, 0, transpose=0, f0_predictor="pm")
    assert {"f0", "encoder"} <= set(voice.last_times.seconds)
    cached = voice.slice_inference(wav, SR_IN, 0, transpose=5, f0_predictor="pm", protect=0.2)
    assert not {"f0", "encoder"} & set(voice.last_times.seconds)
    voice.cache.clear()
    fresh = voice.slice_inference(wav, SR_IN, 0, transpose=5, f0_predictor="pm", protect=0.2, cache=False)
    np.testing.assert_array_equal(cached, fresh)
    voice.slice_inference(wav, SR_IN, 0, f0_predictor="pm")
    assert {"f0", "encoder"} <= set(voice.last_times.seconds)  # the cache=False run stored nothing


def test_bf16_vocoder_is_an_rvc_option_close_to_float32(voice):
    """vocoder_precision applies to RVC voices (the decoder under autocast); not bit-exact, close."""
    from svc_core.precision import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        with pytest.raises(OptionError, match="bf16"):
            voice.slice_inference(_tone(), SR_IN, None, vocoder_precision="bf16")
        return
    ref = voice.slice_inference(_tone(), SR_IN, None, f0_predictor="pm")
    out = voice.slice_inference(_tone(), SR_IN, None, f0_predictor="pm", vocoder_precision="bf16")
    assert out.shape == ref.shape
    assert 0 < np.abs(out - ref).max() < 0.05 * max(1e-3, np.abs(ref).max())
