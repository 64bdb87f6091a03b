"""Unit2Mel against upstream so-vits-svc 4.1 numbers (../shared/compat/parity/diffusion): condition, norm, q_sample."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.diffusion import load_diffusion
from svc_core.errors import OptionError, SpeakerError

TOL = 1e-5  # the issue asks for 1e-4 at most


@pytest.fixture(scope="module")
def diff_dir(parity_dir):
    return parity_dir / "diffusion"


@pytest.fixture(scope="module")
def model(diff_dir):
    models = diff_dir / "models" / "diffusion_dev"
    return load_diffusion(models / "model_0.pt", models / "config.yaml")


@pytest.fixture(scope="module")
def cond_npz(diff_dir):
    return dict(np.load(diff_dir / "unit2mel_cond.npz"))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


def _close(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape
    return float((ours - _t(ref)).abs().max())


def test_c0_speaker_id(model, cond_npz):
    c = cond_npz
    with torch.no_grad():
        ours = model.condition(_t(c["units"]), _t(c["f0"]), _t(c["vol"]), _t(c["c0_spk_id"]))
    assert _close(ours, c["c0_cond"]) <= TOL


def test_c1_aug_shift(model, cond_npz):
    c = cond_npz
    with torch.no_grad():
        ours = model.condition(_t(c["units"]), _t(c["f0"]), _t(c["vol"]), _t(c["c1_spk_id"]),
                               aug_shift=_t(c["c1_aug_shift"]))
        without = model.condition(_t(c["units"]), _t(c["f0"]), _t(c["vol"]), _t(c["c1_spk_id"]))
    assert _close(ours, c["c1_cond"]) <= TOL
    assert float((without - _t(c["c1_cond"])).abs().max()) > 1e-3  # the shift term is really there


def test_c2_speaker_mix(model, cond_npz):
    c = cond_npz
    mix = {int(sid): float(w) for sid, w in c["c2_spk_mix"]}
    with torch.no_grad():
        ours = model.condition(_t(c["units"]), _t(c["f0"]), _t(c["vol"]), spk_mix=mix)
    assert _close(ours, c["c2_cond"]) <= TOL


def test_c3_batch(model, cond_npz):
    c = cond_npz
    with torch.no_grad():
        ours = model.condition(_t(c["c3_units"]), _t(c["c3_f0"]), _t(c["c3_vol"]), _t(c["c3_spk_id"]),
                               aug_shift=_t(c["c3_aug_shift"]))
    assert _close(ours, c["c3_cond"]) <= TOL


def test_speaker_errors(model, cond_npz):
    c = cond_npz
    args = (_t(c["units"]), _t(c["f0"]), _t(c["vol"]))
    with pytest.raises(OptionError, match="2 speakers"):
        model.condition(*args)
    with pytest.raises(SpeakerError, match="ids 0..1"):
        model.condition(*args, torch.tensor([[2]]))
    with pytest.raises(SpeakerError, match="Speaker id 5"):
        model.condition(*args, spk_mix={0: 0.5, 5: 0.5})


def test_norm_and_q_sample(model, diff_dir):
    den = np.load(diff_dir / "denoiser.npz")
    gt = np.load(diff_dir / "sampler_ddim.npz")["gt_mel"]  # the frames the sampler inputs (and x_start) use
    decoder = model.decoder
    x_start = decoder.norm_spec(_t(gt)).transpose(1, 2)[:, None]
    assert _close(x_start, den["x_start_norm"]) <= TOL
    x = decoder.q_sample(_t(den["x_start_norm"]), _t(den["x_t"]).reshape(1), _t(den["x_noise"]))
    assert _close(x, den["x"]) <= TOL
    back = decoder.denorm_spec(x_start.squeeze(1).transpose(1, 2))
    assert _close(back, gt) <= 1e-5


def test_loaded_buffers_are_upstreams(model):
    decoder = model.decoder
    assert decoder.spec_min.shape == (1, 1, 1) and float(decoder.spec_min) == -12.0 and float(decoder.spec_max) == 2.0
    assert (decoder.timesteps, decoder.k_step_max, decoder.full_chain) == (1000, 1000, True)
    schedule = decoder.schedule()
    assert schedule.timesteps == 1000 and schedule.betas is decoder.betas


def test_per_frame_speaker_map_refused(model, cond_npz):
    c = cond_npz
    with pytest.raises(OptionError, match="spk_mix"):
        model.condition(_t(c["units"]), _t(c["f0"]), _t(c["vol"]), torch.tensor([[0, 1]]))
