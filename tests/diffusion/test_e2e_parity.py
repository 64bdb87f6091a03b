"""Svc with shallow diffusion and with only-diffusion, end to end against upstream's stored runs
(../shared/compat/parity/diffusion README section 6).

Upstream's content encoder there was a stand-in returning fixed units, so ours is replaced by one returning the same
stored units after checking that the 16 kHz audio it receives equals upstream's. Every other stage is ours: PCM
round trip, pm f0, transpose, stretching, so-vits synthesizer, mel extraction, volume, Unit2Mel conditioning, the
dpm-solver++ sampler with the real denoiser, the NSF-HiFiGAN mel vocoder, padding removal. The random draws are fed
through the NoiseSource seam: the diffusion draw as recorded, the vocoder's from upstream's RNG state at that point.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.audio import load_audio
from svc_core.noise import NoiseSource, RecordedNoise, TorchNoise
from svc_core.pipeline import Svc
from stored_units import StoredUnits

MEL_TOL = 1e-4  # the bound for mels
AUDIO_TOL = 1e-4  # and for audio


class UpstreamDraws(NoiseSource):
    """The diffusion draw as recorded, then torch's global RNG from the state upstream's vocoder started from."""

    def __init__(self, diffusion_draw: np.ndarray, vocoder_rng_state: np.ndarray) -> None:
        self.recorded = RecordedNoise([diffusion_draw])
        self.rng_state = torch.from_numpy(vocoder_rng_state.copy())
        self.torch = TorchNoise()

    def _source(self) -> NoiseSource:
        if not self.recorded.exhausted:
            return self.recorded
        if self.rng_state is not None:
            torch.set_rng_state(self.rng_state)
            self.rng_state = None
        return self.torch

    def randn(self, shape, device="cpu"):
        return self._source().randn(shape, device)

    def rand(self, shape, device="cpu"):
        return self._source().rand(shape, device)


def _convert(parity_dir, only_diffusion: bool):
    diff_dir = parity_dir / "diffusion"
    front = np.load(diff_dir / "e2e_frontend.npz")
    ref = np.load(diff_dir / ("e2e_only_diffusion.npz" if only_diffusion else "e2e_shallow.npz"))
    encoder = StoredUnits("vec768l12", 768, front["wav16k"], front["units_raw"])
    models = diff_dir / "models"
    sovits = parity_dir / "models" / "small_vec768l12"
    paths = (None, None) if only_diffusion else (sovits / "G_0.pth", sovits / "config.json")
    svc = Svc(*paths, encoder=encoder, diffusion_model_path=models / "diffusion_dev" / "model_0.pt",
              diffusion_config_path=models / "diffusion_dev" / "config.yaml",
              vocoder_path=models / "nsf_hifigan_dev" / "model")
    svc.noise_factory = lambda opts: UpstreamDraws(ref["diff_noise"], ref["voc_rng_state"])
    seen = {}
    model = svc.diffusion.model
    forward = model.forward

    def recording_forward(units, f0, vol, **kw):
        seen.update(f0=f0.clone(), vol=vol.clone(), spk_id=kw.get("spk_id"))
        mel = forward(units, f0, vol, **kw)
        seen["mel"] = mel.clone()
        return mel

    model.forward = recording_forward
    wav, sr = load_audio(parity_dir / "sweep5s_44k.wav")
    out = svc.slice_inference(wav, sr, "spk0", transpose=3, f0_predictor="pm", noise_scale=0.0, slice_db=-40,
                              pad_seconds=0.5, cluster_ratio=0, loudness_mix=1, k_step=100,
                              shallow_diffusion=not only_diffusion, only_diffusion=only_diffusion)
    return ref, encoder, seen, out, svc


@pytest.fixture(scope="module", params=["shallow", "only_diffusion"])
def run(request, parity_dir):
    return request.param, _convert(parity_dir, request.param == "only_diffusion")


def test_encoder_input_matches(run):
    _, (ref, encoder, *_) = run
    assert encoder.input_error is not None and encoder.input_error < 5e-6


def test_diffusion_inputs_match(run):
    _, (ref, _, seen, _, _) = run
    assert np.abs(seen["f0"].numpy() - ref["diff_f0"]).max() <= 1e-4
    assert np.abs(seen["vol"].numpy() - ref["diff_vol"]).max() <= 1e-5
    assert seen["spk_id"].tolist() == ref["diff_spk_id"].tolist()


def test_diffusion_mel_matches(run):
    mode, (ref, _, seen, _, _) = run
    mel, expected = seen["mel"].numpy(), ref["diff_mel"]
    if mode == "shallow":
        assert np.abs(mel - expected).max() <= MEL_TOL
    else:  # from pure noise the random denoiser's error is amplified ~157x (|mel| ~ 5e3): relative bound
        assert np.abs(mel - expected).max() <= MEL_TOL * max(1.0, float(np.abs(expected).max()))


def test_output_matches(run):
    mode, (ref, _, _, out, svc) = run
    expected = ref["output"]
    assert out.shape == expected.shape
    assert "diffusion" in svc.last_times.seconds and "mel vocoder" in svc.last_times.seconds
    assert np.abs(out - expected).max() <= AUDIO_TOL  # only-diffusion: 70 % of it is clipped at +-1 (see README)
