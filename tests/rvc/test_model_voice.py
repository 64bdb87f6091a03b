"""RvcVoice: load_rvc_voice, synthesize (the recipe's call) and the so-vits `infer` seam."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rvc_factories import make_rvc_model, parity_model

from svc_core.errors import ModelError
from svc_core.noise import RecordedNoise, TorchNoise
from svc_core.rvc.voice import coarse_pitch_torch, load_rvc_voice


@pytest.fixture(scope="module")
def parity(parity_dir):
    voice = load_rvc_voice(parity_model("v2_40k_f0", parity_dir))
    return voice, np.load(parity_dir / "rvc" / "infer_v2_40k_f0.npz")


def test_voice_describes_itself(parity):
    voice, _ = parity
    assert voice.family == "rvc" and voice.has_f0 and voice.n_speakers == 4
    cfg = voice.config
    assert (cfg.sampling_rate, cfg.hop_length, cfg.filter_length) == (40000, 400, 2048)
    assert (cfg.speech_encoder, cfg.model.ssl_dim, cfg.unit_interpolate_mode) == ("vec768l12", 768, "nearest")
    assert cfg.n_speakers == 4 and cfg.speaker_id("1") == 1
    assert voice.meta["kind"] == "rvc-small" and voice.meta["info"] == "1epoch"
    assert not any(p.requires_grad for p in voice.parameters())
    assert not any("parametrizations" in k for k in voice.state_dict())  # weight norm folded


def test_synthesize_reproduces_rvc(parity):
    voice, data = parity
    noise = RecordedNoise([data[k] for k in ("rec_noise0_randn_like", "rec_noise1_rand", "rec_noise2_randn_like")])
    audio = voice.synthesize(torch.from_numpy(data["in_phone"]), torch.from_numpy(data["in_pitch"]),
                             torch.from_numpy(data["in_nsff0"]), torch.tensor([1]), noise)
    assert audio.dtype == np.float32 and audio.shape == (40000,)
    assert np.abs(audio - data["rec_o"][0, 0]).max() <= 1e-4


def test_coarse_pitch_is_rvcs_mapping(parity):
    _, data = parity
    assert torch.equal(coarse_pitch_torch(torch.from_numpy(data["in_nsff0"])), torch.from_numpy(data["in_pitch"]))


def test_infer_seam(parity):
    """so-vits call: c [1, C, T], f0 Hz + uv, g [1, 1]; unvoiced frames become 0 Hz / coarse 1; seeded draws."""
    voice, data = parity
    c = torch.from_numpy(data["in_phone"]).transpose(1, 2)
    hz = torch.from_numpy(data["in_nsff0"])
    uv = (hz > 0).float()
    f0 = torch.where(hz > 0, hz, torch.full_like(hz, 200.0))  # so-vits interpolates over unvoiced frames
    audio, f0_out = voice.infer(c, f0, uv, torch.LongTensor([[1]]), seed=7)
    assert audio.shape == (1, 1, 40000) and torch.equal(f0_out, f0)
    again = voice.synthesize(c.transpose(1, 2), torch.from_numpy(data["in_pitch"]), hz, torch.tensor([1]),
                             TorchNoise.seeded(7))
    assert np.array_equal(audio[0, 0].numpy(), again)
    mix = torch.zeros(100, 4)
    mix[:, 1] = 1
    by_mix, _ = voice.infer(c, f0, uv, mix, seed=7)
    assert torch.equal(by_mix, audio)
    with pytest.raises(ModelError, match="predict f0"):
        voice.infer(c, f0, uv, torch.LongTensor([[1]]), predict_f0=True)


def test_wrong_content_width_is_a_clear_error(parity):
    voice, _ = parity
    with pytest.raises(ModelError, match="768"):
        voice.synthesize(torch.zeros(1, 10, 256), torch.ones(1, 10, dtype=torch.long), torch.zeros(1, 10), 0,
                         TorchNoise.seeded(0))


def test_factory_voice_loads_and_sings(tmp_path):
    path = make_rvc_model(tmp_path / "v1.pth", "v1", "48k", speakers=2, seed=3)
    voice = load_rvc_voice(path)
    assert voice.hparams.version == "v1" and voice.config.sampling_rate == 48000 and voice.n_speakers == 2
    frames = 20
    hz = torch.full((1, frames), 220.0)
    audio = voice.synthesize(torch.randn(1, frames, 256), coarse_pitch_torch(hz), hz, 1, TorchNoise.seeded(0))
    assert audio.shape == (frames * 480,) and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
