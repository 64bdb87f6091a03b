"""The WaveNet denoiser against upstream's numbers (denoiser.npz): outputs for int64 / float32 steps, a batch,
every intermediate, and the cached-condition path."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from svc_core.diffusion import load_diffusion
from svc_core.diffusion.wavenet import step_embedding

TOL = 1e-5  # the issue asks for 1e-4 at most
CACHED_TOL = 1e-6  # contract: the cached path gives the same numbers


@pytest.fixture(scope="module")
def npz(parity_dir):
    return dict(np.load(parity_dir / "diffusion" / "denoiser.npz"))


@pytest.fixture(scope="module")
def wavenet(parity_dir):
    models = parity_dir / "diffusion" / "models" / "diffusion_dev"
    return load_diffusion(models / "model_0.pt", models / "config.yaml").decoder.denoise_fn


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


def _diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape
    return float((ours - _t(ref)).abs().max())


def test_int_steps(wavenet, npz):
    x, cond = _t(npz["x"]), _t(npz["cond"])
    assert npz["steps_int"].dtype == np.int64
    with torch.no_grad():
        for step, ref in zip(npz["steps_int"], npz["eps_int"]):
            assert _diff(wavenet(x, torch.tensor([step]), cond)[0], ref) <= TOL, step  # rows are [1, M, T]
    assert float(np.abs(npz["eps_int"][0] - npz["eps_int"][-1]).max()) > 0.05  # t matters in these numbers


def test_float_steps(wavenet, npz):
    x, cond = _t(npz["x"]), _t(npz["cond"])
    with torch.no_grad():
        for step, ref in zip(npz["steps_float"], npz["eps_float"]):
            assert _diff(wavenet(x, torch.tensor([step], dtype=torch.float32), cond)[0], ref) <= TOL, step


def test_batch_of_two(wavenet, npz):
    with torch.no_grad():
        ours = wavenet(_t(npz["b2_x"]), _t(npz["b2_t"]), _t(npz["b2_cond"]))
    assert _diff(ours, npz["b2_eps"]) <= TOL


def test_intermediates(wavenet, npz):
    x, cond, t = _t(npz["x"]), _t(npz["cond"]), _t(npz["im_t"])
    with torch.no_grad():
        in_proj = wavenet.input_projection(x.squeeze(1))
        assert _diff(in_proj, npz["im_in_proj"]) <= TOL
        sin = step_embedding(t, wavenet.n_chans)
        assert _diff(sin, npz["im_step_sin"]) <= TOL
        step = wavenet.mlp(sin)
        assert _diff(step, npz["im_step_mlp"]) <= TOL
        h, skips = F.relu(in_proj), []
        for i, layer in enumerate(wavenet.residual_layers):
            h, skip = layer(h, cond, step)
            skips.append(skip)
            assert _diff(h, npz[f"im_layer{i}_x"]) <= TOL, i
            assert _diff(skip, npz[f"im_layer{i}_skip"]) <= TOL, i
        skip_proj = wavenet.skip_projection(torch.stack(skips).sum(0) / math.sqrt(wavenet.n_layers))
        assert _diff(skip_proj, npz["im_skip_proj"]) <= TOL
        assert _diff(wavenet(x, t, cond), npz["im_eps"]) <= TOL


def test_cached_condition_path(wavenet, npz):
    x, cond = _t(npz["x"]), _t(npz["cond"])
    eps_fn = wavenet.cached(cond)
    with torch.no_grad():
        for step in npz["steps_int"]:
            t = torch.tensor([step])
            assert float((eps_fn(x, t) - wavenet(x, t, cond)).abs().max()) <= CACHED_TOL
        for step, ref in zip(npz["steps_float"], npz["eps_float"]):
            assert _diff(eps_fn(x, torch.tensor([step], dtype=torch.float32))[0], ref) <= TOL
        b2 = wavenet.cached(_t(npz["b2_cond"]))
        assert _diff(b2(_t(npz["b2_x"]), _t(npz["b2_t"])), npz["b2_eps"]) <= TOL
        scalar = eps_fn(x, torch.tensor(int(npz["steps_int"][2])))  # a 0-d step applies to the whole batch
        assert _diff(scalar[0], npz["eps_int"][2]) <= TOL


def test_cached_path_calls_conditioner_once(wavenet, npz):
    calls = []
    hooks = [layer.conditioner_projection.register_forward_hook(lambda *a: calls.append(1))
             for layer in wavenet.residual_layers]
    try:
        eps_fn = wavenet.cached(_t(npz["cond"]))
        with torch.no_grad():
            for step in npz["steps_int"]:
                eps_fn(_t(npz["x"]), torch.tensor([step]))
    finally:
        for hook in hooks:
            hook.remove()
    assert len(calls) == wavenet.n_layers  # once per layer, not once per layer and step
