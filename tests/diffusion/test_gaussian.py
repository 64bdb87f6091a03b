"""GaussianDiffusion: infer's guards and start (shallow q_sample / only-diffusion noise), the sampler hand-off, and
the training loss (upstream p_losses: l2 between the added noise and the predicted one, t < k_step_max)."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffusion_factories import diffusion_inputs, make_diffusion_config_dict, make_random_unit2mel
from svc_core.diffusion import load_diffusion
from svc_core.noise import RecordedNoise, TorchNoise
from svc_core.diffusion.schedule import schedule_arrays
from svc_core.errors import OptionError

FRAMES = 12


@pytest.fixture(scope="module")
def full_model():
    return make_random_unit2mel(make_diffusion_config_dict(n_spk=2), seed=3)


@pytest.fixture(scope="module")
def shallow_model():
    return make_random_unit2mel(make_diffusion_config_dict(n_spk=2, k_step_max=100), seed=4)


@pytest.fixture(scope="module")
def dev_model(parity_dir):
    models = parity_dir / "diffusion" / "models" / "diffusion_dev"
    return load_diffusion(models / "model_0.pt", models / "config.yaml")


@pytest.fixture()
def inputs():
    return diffusion_inputs(768, frames=FRAMES, seed=5)


def _run(model, inputs, gt=True, **kwargs):
    return model(inputs["units"], inputs["f0"], inputs["vol"], inputs["spk_id"],
                 gt_spec=inputs["gt_spec"] if gt else None, **kwargs)


def test_guards(full_model, shallow_model, inputs):
    assert (shallow_model.decoder.k_step_max, shallow_model.decoder.full_chain) == (100, False)
    with pytest.raises(OptionError, match="k_step 101 is larger than this diffusion model's k_step_max \\(100\\)"):
        _run(shallow_model, inputs, k_step=101)
    with pytest.raises(OptionError, match="can only refine a so-vits-svc mel"):
        _run(shallow_model, inputs, gt=False)
    with pytest.raises(OptionError, match="k_step 1001 is larger"):
        _run(full_model, inputs, k_step=1001)
    for bad in (0, -3, 2.5, "ten", None):
        with pytest.raises(OptionError, match="k_step must be a whole number"):
            _run(full_model, inputs, k_step=bad)


class _Capture:
    """A stand-in for svc_core.diffusion.samplers (written by another part of issue #21): records what infer hands
    over and returns x unchanged, so the test sees infer's own start and output transform."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("svc_core.diffusion.samplers")

        def run_sampler(method, eps_fn, schedule, x, t_start, speedup, noise):
            self.calls.append(dict(method=method, eps_fn=eps_fn, schedule=schedule, x=x.clone(), t_start=t_start,
                                   speedup=speedup, noise=noise))
            return x

        mod.run_sampler = run_sampler
        return mod


def test_shallow_start_and_handoff(full_model, inputs, monkeypatch):
    capture = _Capture()
    monkeypatch.setitem(sys.modules, "svc_core.diffusion.samplers", capture.module())
    draw = torch.randn(1, 1, 128, FRAMES, generator=torch.Generator().manual_seed(9))
    noise = RecordedNoise([draw.numpy()])
    with torch.no_grad():
        mel = _run(full_model, inputs, k_step=37, method="ddim", speedup=5, noise=noise)
    call = capture.calls[0]
    assert noise.exhausted and call["noise"] is noise
    assert (call["method"], call["t_start"], call["speedup"]) == ("ddim", 37, 5)
    arrays = schedule_arrays(1000)
    x0 = (inputs["gt_spec"] + 12.0) / 14.0 * 2 - 1  # normalised with spec_min -12, spec_max 2
    expected = (np.float32(arrays["sqrt_alphas_cumprod"][36]) * x0
                + np.float32(arrays["sqrt_one_minus_alphas_cumprod"][36]) * draw[:, 0].transpose(1, 2))
    assert float((call["x"][:, 0].transpose(1, 2) - expected).abs().max()) <= 1e-5
    assert call["schedule"].timesteps == 1000 and call["schedule"].betas is full_model.decoder.betas
    # the sampler's result is denormalised and transposed back to [B, T, M]
    assert mel.shape == (1, FRAMES, 128)
    assert float((mel - ((call["x"][:, 0].transpose(1, 2) + 1) / 2 * 14.0 - 12.0)).abs().max()) <= 1e-5
    # eps_fn is the denoiser on this condition
    cond = full_model.condition(inputs["units"], inputs["f0"], inputs["vol"], inputs["spk_id"]).transpose(1, 2)
    t = torch.tensor([30])
    with torch.no_grad():
        assert torch.allclose(call["eps_fn"](call["x"], t), full_model.decoder.denoise_fn(call["x"], t, cond),
                              atol=1e-6)


def test_only_diffusion_start(full_model, inputs, monkeypatch):
    capture = _Capture()
    monkeypatch.setitem(sys.modules, "svc_core.diffusion.samplers", capture.module())
    draw = np.random.default_rng(1).standard_normal((1, 1, 128, FRAMES)).astype(np.float32)
    with torch.no_grad():
        _run(full_model, inputs, gt=False, k_step=5, method="dpm-solver++", speedup=10, noise=RecordedNoise([draw]))
    call = capture.calls[0]
    assert call["t_start"] == 1000  # k_step is ignored: the chain's end
    assert torch.equal(call["x"], torch.from_numpy(draw))


def _manual_loss(model, cond, gt, t, noise):
    arrays = schedule_arrays(1000)
    x0 = ((gt + 12.0) / 14.0 * 2 - 1).transpose(1, 2)[:, None]
    a = torch.tensor(arrays["sqrt_alphas_cumprod"], dtype=torch.float32)[t].reshape(-1, 1, 1, 1)
    b = torch.tensor(arrays["sqrt_one_minus_alphas_cumprod"], dtype=torch.float32)[t].reshape(-1, 1, 1, 1)
    eps = model.decoder.denoise_fn(a * x0 + b * noise, t, cond.transpose(1, 2))
    return ((noise - eps) ** 2).mean()


def test_loss_is_noise_mse(full_model):
    inp = diffusion_inputs(768, frames=FRAMES, batch=3, seed=6)
    with torch.no_grad():
        cond = full_model.condition(inp["units"], inp["f0"], inp["vol"], inp["spk_id"])
        t = torch.tensor([0, 17, 999])
        noise = torch.randn(3, 1, 128, FRAMES, generator=torch.Generator().manual_seed(2))
        loss = full_model.decoder.loss(cond, inp["gt_spec"], t, noise)
        assert loss.shape == ()
        assert abs(float(loss) - float(_manual_loss(full_model, cond, inp["gt_spec"], t, noise))) <= 1e-6
        assert float(loss) > 0.01
        # t first, then the noise, both from the generator (upstream's draw order)
        seeded = full_model.decoder.loss(cond, inp["gt_spec"], generator=torch.Generator().manual_seed(11))
        gen = torch.Generator().manual_seed(11)
        t2 = torch.randint(0, 1000, (3,), generator=gen)
        noise2 = torch.randn(3, 1, 128, FRAMES, generator=gen)
        assert abs(float(seeded) - float(_manual_loss(full_model, cond, inp["gt_spec"], t2, noise2))) <= 1e-6
        via_source = full_model.decoder.loss(cond, inp["gt_spec"], t2, TorchNoise(torch.Generator().manual_seed(4)))
        noise3 = torch.randn(3, 1, 128, FRAMES, generator=torch.Generator().manual_seed(4))
        assert abs(float(via_source) - float(_manual_loss(full_model, cond, inp["gt_spec"], t2, noise3))) <= 1e-6


def test_training_steps_stay_below_k_step_max(full_model, shallow_model):
    gen = torch.Generator().manual_seed(0)
    shallow = shallow_model.decoder.sample_steps(5000, generator=gen)
    full = full_model.decoder.sample_steps(5000, generator=gen)
    assert shallow.dtype == torch.int64 and int(shallow.min()) == 0 and int(shallow.max()) == 99
    assert int(full.max()) > 900 and int(full.max()) <= 999


def test_unit2mel_loss_trains():
    model = make_random_unit2mel(make_diffusion_config_dict(n_spk=2, k_step_max=100), seed=8).train()
    for p in model.parameters():
        p.requires_grad_(True)
    inp = diffusion_inputs(768, frames=FRAMES, batch=2, seed=9)
    shift = torch.tensor([[[2.0]], [[-3.0]]])
    t = torch.tensor([5, 60])
    noise = torch.randn(2, 1, 128, FRAMES, generator=torch.Generator().manual_seed(1))
    args = (inp["units"], inp["f0"], inp["vol"], inp["gt_spec"], inp["spk_id"], shift, t, noise)
    loss = model.loss(*args)
    loss.backward()
    assert model.aug_shift_embed.weight.grad.abs().sum() > 0 and model.spk_embed.weight.grad[0].abs().sum() > 0
    assert model.spk_embed.weight.grad[1].abs().sum() == 0  # speaker 1 was not in the batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = float(loss.detach())
    for _ in range(10):
        optimizer.zero_grad()
        loss = model.loss(*args)
        loss.backward()
        optimizer.step()
    assert float(model.loss(*args).detach()) < 0.95 * first  # a fixed batch: the loss must go down
    ref = F.mse_loss(noise, model.decoder.denoise_fn(
        model.decoder.q_sample(model.decoder.norm_spec(inp["gt_spec"]).transpose(1, 2)[:, None], t, noise), t,
        model.condition(inp["units"], inp["f0"], inp["vol"], inp["spk_id"], aug_shift=shift).transpose(1, 2)))
    assert abs(float(model.loss(*args).detach()) - float(ref.detach())) <= 1e-6


@pytest.mark.parametrize("npz_name,case,k_step", [("sampler_ddim", "k100", 100), ("sampler_ddim", "k37", 37),
                                                   ("sampler_dpm_solver_pp", "k37", 37),
                                                   ("sampler_ddim", "full", 100)])
def test_start_matches_upstream(parity_dir, dev_model, monkeypatch, npz_name, case, k_step):
    """The x infer hands to the sampler is upstream's first denoiser input (call 0) for the recorded draw."""
    model = dev_model
    npz = np.load(parity_dir / "diffusion" / f"{npz_name}.npz")
    assert int(npz[f"{case}_call_idx"][0]) == 0
    capture = _Capture()
    monkeypatch.setitem(sys.modules, "svc_core.diffusion.samplers", capture.module())
    t = {k: torch.from_numpy(npz[k]) for k in ("units", "f0", "vol", "spk_id", "gt_mel")}
    with torch.no_grad():
        model(t["units"], t["f0"], t["vol"], t["spk_id"], gt_spec=None if case == "full" else t["gt_mel"],
              k_step=k_step, noise=RecordedNoise([npz[f"{case}_noise"]]))
    start = capture.calls[0]["x"]
    assert float((start - torch.from_numpy(npz[f"{case}_x"][0])).abs().max()) <= 1e-5
    assert capture.calls[0]["t_start"] == (1000 if case == "full" else k_step)
