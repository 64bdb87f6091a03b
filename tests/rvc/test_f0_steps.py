"""RVC's f0 front-end (svc_core.rvc.f0) against f0_steps.npz, made with RVC's own Pipeline.get_f0."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.errors import OptionError
from svc_core.rvc.f0 import coarse_pitch, rvc_f0, rvc_f0_raw

CASES = [("pm", 0, 3), ("pm", 3, 3), ("harvest", 3, 3), ("harvest", 0, 0)]


@pytest.fixture(scope="module")
def steps(parity_dir):
    return np.load(parity_dir / "rvc" / "f0_steps.npz")


@pytest.mark.parametrize("method,key,radius", CASES)
def test_f0_matches_rvc_exactly(steps, method, key, radius):
    name = f"{method}_up{key}_fr{radius}"
    coarse, hz = rvc_f0_raw(method, steps["audio_pad"], int(steps["p_len"]), key, radius)
    np.testing.assert_array_equal(hz, steps[name + "_hz"])  # pm: p_len frames; harvest: p_len + 1
    np.testing.assert_array_equal(coarse, steps[name + "_coarse"])


def test_pipeline_form_is_cut_to_p_len(steps):
    p_len = int(steps["p_len"])
    coarse, hz = rvc_f0("harvest", steps["audio_pad"], p_len, 3, 3)
    assert coarse.dtype == np.int64 and hz.dtype == np.float32 and coarse.shape == hz.shape == (p_len,)
    np.testing.assert_array_equal(coarse, steps["harvest_up3_fr3_coarse"][:p_len])
    np.testing.assert_array_equal(hz, steps["harvest_up3_fr3_hz"][:p_len].astype(np.float32))
    assert (hz == 0).any(), "unvoiced frames stay 0 Hz (no interpolation)"


def test_coarse_mapping_matches_fixture_and_edges(steps):
    for method, key, radius in CASES:
        name = f"{method}_up{key}_fr{radius}"
        np.testing.assert_array_equal(coarse_pitch(steps[name + "_hz"].copy()), steps[name + "_coarse"])
    edges = coarse_pitch(np.array([0.0, 10.0, 50.0, 1100.0, 5000.0]))
    np.testing.assert_array_equal(edges, [1, 1, 1, 255, 255])


def test_unknown_method_is_refused(steps):
    with pytest.raises(OptionError, match="dio"):
        rvc_f0("dio", steps["audio_pad"], 10, 0, 3)


def _tone_then_silence(seconds: float = 0.6, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * hz * t)
    audio[len(audio) // 2:] = 0.0
    return audio


@pytest.mark.parametrize("method", ["crepe", "fcpe"])
def test_network_methods_keep_raw_f0(method):
    """Frames as the network gives them (N // 160 + 1) cut to p_len; silence stays 0 Hz (no interpolation)."""
    audio = _tone_then_silence()
    p_len = len(audio) // 160
    coarse, hz = rvc_f0(method, audio, p_len, 12, 3)
    assert hz.shape == coarse.shape == (p_len,)
    voiced = hz[5: p_len // 2 - 5]
    assert np.all(np.abs(voiced / 440.0 - 1) < 0.03), voiced  # one octave up
    assert np.all(hz[p_len // 2 + 5:] == 0) and np.all(coarse[p_len // 2 + 5:] == 1)


def test_rmvpe_uses_rvcs_threshold(tmp_path, monkeypatch):
    import torch

    import svc_core.rvc.f0 as rvc_f0_module

    from svc_core.f0 import get_predictor
    from svc_core.f0.rmvpe import cents_to_hz, salience_to_cents
    from svc_core.f0.rmvpe_model import E2E0

    torch.manual_seed(0)
    weights = tmp_path / "rmvpe.pt"  # RVC's layout: a bare state dict without unet.tf.*
    torch.save({k: v for k, v in E2E0().state_dict().items() if not k.startswith("unet.tf.")}, weights)
    audio = _tone_then_silence(0.4)
    built = []
    real = rvc_f0_module.get_predictor
    monkeypatch.setattr(rvc_f0_module, "get_predictor", lambda *a, **k: built.append(k) or real(*a, **k))
    coarse, hz = rvc_f0_raw("rmvpe", audio, len(audio) // 160, 0, 3, weights_path=weights)
    assert built[0]["threshold"] == 0.03 and built[0]["hop_length"] == 160 and built[0]["sampling_rate"] == 16000
    predictor = get_predictor("rmvpe", hop_length=160, sampling_rate=16000, weights_path=weights)
    salience = predictor.salience(audio.astype(np.float32))
    assert hz.shape == (len(audio) // 160 + 1,) == (salience.shape[0],)
    np.testing.assert_allclose(hz, cents_to_hz(salience_to_cents(salience, 0.03)).numpy(), rtol=1e-6)
