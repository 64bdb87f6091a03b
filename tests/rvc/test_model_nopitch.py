"""RVC's no-pitch classes (SynthesizerTrnMs{256|768}NSFsid_nono): every preset built, saved, loaded, and run."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rvc_factories import make_hparams, make_random_net, make_rvc_model

from svc_core.noise import RecordedNoise, TorchNoise
from svc_core.rvc.checkpoint import read_rvc_checkpoint
from svc_core.rvc.synthesizer import RvcSynthesizer
from svc_core.rvc.voice import load_rvc_voice

PRESETS = [(v, sr) for v in ("v1", "v2") for sr in ("32k", "40k", "48k")]
FRAMES = 30


@pytest.mark.parametrize("version,sr", PRESETS)
def test_no_pitch_round_trip(tmp_path, version, sr):
    path = make_rvc_model(tmp_path / "nono.pth", version, sr, f0=False, seed=1)
    raw = torch.load(path, weights_only=True)
    assert raw["f0"] == 0 and raw["version"] == version
    keys = set(raw["weight"])
    assert "enc_p.emb_pitch.weight" not in keys and not any(k.startswith(("dec.m_source", "dec.noise_convs"))
                                                                for k in keys)
    assert "dec.cond.weight" in keys and "dec.conv_post.bias" not in keys
    ckpt = read_rvc_checkpoint(path)
    assert not ckpt.hparams.f0 and ckpt.hparams.sr_name == sr and ckpt.hparams.version == version
    back = ckpt.build().rvc_state()
    assert back.keys() == keys and all(torch.equal(back[k], raw["weight"][k].float()) for k in keys)
    voice = load_rvc_voice(path)
    assert not voice.has_f0
    noise = RecordedNoise([np.random.default_rng(0).standard_normal((1, 32, FRAMES)).astype(np.float32)])
    audio = voice.synthesize(torch.randn(1, FRAMES, ckpt.hparams.content_dim), None, None, 0, noise)
    assert noise.exhausted  # the prior draw only, as RVC's no-pitch infer
    assert audio.shape == (FRAMES * ckpt.hparams.hop_length,) and np.abs(audio).max() > 1e-4


def test_no_pitch_decoder_is_the_nsf_decoder_without_its_source():
    """With the NSF net's noise_convs and emb_pitch zeroed, a no-pitch net holding the same weights gives the same
    audio: the no-pitch path reuses the parity-checked pieces, minus the excitation."""
    pitch_net = make_random_net(make_hparams("v2", "40k"), seed=6).eval()
    with torch.no_grad():
        for conv in pitch_net.dec.noise_convs:
            conv.weight.zero_()
            conv.bias.zero_()
        pitch_net.enc_p.emb_pitch.weight.zero_()
    plain = RvcSynthesizer(make_hparams("v2", "40k", f0=False)).eval()
    state = {k: v for k, v in pitch_net.rvc_state().items() if k in plain.rvc_state()}
    plain.load_rvc_state(state)
    phone = torch.randn(1, FRAMES, 768)
    lengths = torch.tensor([FRAMES])
    hz = torch.full((1, FRAMES), 200.0)
    g = plain.speaker_embedding(torch.tensor([0]))
    with torch.no_grad():
        a = pitch_net.infer(phone, lengths, torch.ones(1, FRAMES, dtype=torch.long), hz, g, TorchNoise.seeded(3)).o
        b = plain.infer(phone, lengths, None, None, g, TorchNoise.seeded(3)).o
    assert float((a - b).abs().max()) <= 1e-5
