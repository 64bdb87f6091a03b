"""Svc.slice_inference end to end against upstream's stored run (parity README section B).

The content encoder upstream used (full-size random hubert-soft, 378 MB) is not shipped, so the encoder stage is
replaced by one that returns upstream's stored units after checking that the 16 kHz audio it receives equals
upstream's; every other stage (PCM round trip, pm f0, transpose, resampling, stretching, volume, synthesizer,
padding removal, stitching) is ours.
"""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.audio import load_audio
from svc_core.pipeline import Svc
from stored_units import StoredUnits


@pytest.fixture(scope="module")
def run(parity_dir):
    ref = np.load(parity_dir / "e2e_pm.npz")
    model_dir = parity_dir / "models" / "small_hubertsoft_vol"
    encoder = StoredUnits("hubertsoft", 256, ref["seg0_wav16k"], ref["seg0_units_raw"])
    svc = Svc(model_dir / "G_0.pth", model_dir / "config.json", encoder=encoder)
    seen = {}
    infer = svc.model.infer

    def recording_infer(c, f0, uv, g, **kw):
        seen.update(c=c.clone(), f0=f0.clone(), uv=uv.clone(), vol=kw["vol"].clone(), g=g.clone())
        audio, f0_out = infer(c, f0, uv, g, **kw)
        seen["audio"], seen["span"] = audio.clone(), kw.get("span")
        return audio, f0_out

    svc.model.infer = recording_infer
    wav, sr = load_audio(parity_dir / "sweep5s_44k.wav")
    out = svc.slice_inference(wav, sr, "spk0", transpose=3, f0_predictor="pm", noise_scale=0.0, slice_db=-40,
                              pad_seconds=0.5, cluster_ratio=0, auto_predict_f0=False, loudness_mix=1)
    return ref, encoder, seen, out, svc


def test_encoder_input_matches(run):
    ref, encoder, *_ = run
    assert encoder.input_error is not None and encoder.input_error < 5e-6


def test_model_inputs_match(run):
    ref, _, seen, _, _ = run
    assert np.array_equal(seen["c"].numpy(), ref["seg0_c"])
    assert np.array_equal(seen["f0"].numpy(), ref["seg0_f0"])
    assert np.array_equal(seen["uv"].numpy(), ref["seg0_uv"])
    assert np.abs(seen["vol"].numpy() - ref["seg0_vol"]).max() < 1e-6
    assert seen["g"].tolist() == ref["seg0_sid"].tolist()


def test_generator_audio_matches(run):
    """The vocoder decodes only the frames the output keeps (not the slice padding): that stretch of upstream's."""
    ref, _, seen, _, svc = run
    start, stop = seen["span"]
    hop = svc.hop_length
    assert start == int(0.5 * svc.sample_rate) // hop and stop == seen["f0"].shape[1] - start
    expected = ref["seg0_net_g_audio"][..., start * hop:stop * hop]
    assert seen["audio"].shape == expected.shape
    assert np.abs(seen["audio"].numpy() - expected).max() <= 1e-4


def test_output_waveform_matches(run):
    ref, _, _, out, svc = run
    assert out.dtype == np.float32 and out.shape == ref["output"].shape
    assert np.abs(out - ref["output"]).max() <= 1e-4
    stages = set(svc.last_times.seconds)
    assert {"slice", "resample", "f0", "encoder", "synthesizer"} <= stages
    assert svc.last_times.rtf > 0
