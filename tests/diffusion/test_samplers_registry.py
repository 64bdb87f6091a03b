"""The sampler registry and run_sampler's contract: names, errors, call counts, batches, no in-place edits."""
from __future__ import annotations

import pytest
import torch

from svc_core.noise import RecordedNoise, TorchNoise
from svc_core.diffusion.samplers import METHODS, SAMPLERS, denoiser_calls, resolve_method, run_sampler
from svc_core.diffusion.schedule import Schedule
from svc_core.errors import OptionError

MELS, FRAMES = 8, 5  # a small [B, 1, M, T] problem; the samplers do not care about the sizes


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return Schedule.linear(1000)


def toy_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A per-item denoiser stand-in that depends on x and t (so batch mixing or a wrong t shows)."""
    scale = (t.double() / 1000.0).to(x.dtype).view(-1, 1, 1, 1)
    return torch.tanh(x * (0.5 + scale)) + 0.01 * t.to(x.dtype).view(-1, 1, 1, 1).sin()


def test_methods_are_the_registry():
    assert set(METHODS) == set(SAMPLERS) and len(METHODS) == len(SAMPLERS)
    assert all(SAMPLERS[m].name == m and SAMPLERS[m].description for m in METHODS)


def test_unknown_method_lists_the_methods():
    with pytest.raises(OptionError) as err:
        resolve_method("euler", 10)
    assert all(m in str(err.value) for m in METHODS)


@pytest.mark.parametrize("method,speedup,want", [
    (None, 10, "ddpm"), ("", 10, "ddpm"), ("pndm", 1, "ddpm"), ("unipc", 0, "ddpm"),
    ("DPM-Solver++", 10, "dpm-solver++"), (" ddim ", 20, "ddim"), ("ddpm", 10, "ddpm"),
])
def test_resolve_method(method, speedup, want):
    assert resolve_method(method, speedup) == want


@pytest.mark.parametrize("method,k,speedup,calls", [
    ("dpm-solver++", 100, 10, 10), ("unipc", 100, 10, 10), ("dpm-solver", 37, 10, 3), ("pndm", 100, 10, 11),
    ("ddim", 100, 10, 10), ("ddim", 37, 10, 4), ("pndm", 1000, 10, 101), ("ddpm", 100, 10, 100),
    (None, 1000, 10, 1000), ("unipc", 100, 1, 100), ("ddim", 5, 10, 1),
])
def test_denoiser_calls(method, k, speedup, calls):
    assert denoiser_calls(method, k, speedup) == calls


def test_bad_arguments_are_option_errors(schedule):
    x = torch.zeros(1, 1, MELS, FRAMES)
    with pytest.raises(OptionError, match="smaller than the speedup"):
        run_sampler("dpm-solver++", toy_eps, schedule, x, 5, 10, TorchNoise())
    with pytest.raises(OptionError, match="between 1 and 1000"):
        run_sampler("ddim", toy_eps, schedule, x, 1001, 10, TorchNoise())
    with pytest.raises(OptionError, match="batch, 1, mels, frames"):
        run_sampler("ddim", toy_eps, schedule, x[0], 100, 10, TorchNoise())


@pytest.mark.parametrize("method", ["dpm-solver++", "dpm-solver", "unipc"])
def test_single_solver_step_is_the_ddim_jump(schedule, method):
    """k_step 15 with speedup 10 gives one solver step (upstream asserts steps >= order there; we run it at
    first order): from step 14 straight to 0, i.e. the DDIM jump x0 = sqrt(a_0) x0_pred + sqrt(1 - a_0) eps."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, MELS, FRAMES, generator=gen)
    calls = []
    eps_fn = lambda x_, t_: calls.append(t_) or toy_eps(x_, t_)  # noqa: E731
    out = run_sampler(method, eps_fn, schedule, x, 15, 10, TorchNoise())
    assert len(calls) == 1 and calls[0].tolist() == [14.0, 14.0]
    a = schedule.alphas_cumprod.double()
    eps = toy_eps(x, calls[0]).double()
    x0_pred = (x.double() - (1 - a[14]).sqrt() * eps) / a[14].sqrt()
    want = a[0].sqrt() * x0_pred + (1 - a[0]).sqrt() * eps
    assert torch.allclose(out.double(), want, atol=2e-5, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_items_one_by_one(schedule, method):
    """B = 2 in one run == each item alone (x [B,1,M,T], t [B]); DDPM draws [B,...] noise per step."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 1, MELS, FRAMES, generator=gen)
    k, speedup = 40, 10
    steps = denoiser_calls(method, k, speedup) if method == "ddpm" else 0
    draws = torch.randn(steps, 2, 1, MELS, FRAMES, generator=gen)
    seen = []

    def eps_fn(x_, t_):
        assert t_.shape == (x_.shape[0],) and bool((t_ == t_[0]).all())
        seen.append(x_.shape[0])
        return toy_eps(x_, t_)

    kept = x.clone()
    both = run_sampler(method, eps_fn, schedule, x, k, speedup, RecordedNoise(list(draws)))
    assert torch.equal(x, kept), "the sampler changed its input in place"
    assert set(seen) == {2} and both.shape == x.shape and torch.isfinite(both).all()
    for b in range(2):
        one = run_sampler(method, eps_fn, schedule, x[b:b + 1], k, speedup, RecordedNoise(list(draws[:, b:b + 1])))
        assert torch.allclose(both[b:b + 1], one, atol=1e-6, rtol=0)


def test_ddpm_draws_through_the_noise_source(schedule):
    x = torch.zeros(1, 1, MELS, FRAMES)
    a = run_sampler(None, toy_eps, schedule, x, 30, 10, TorchNoise.seeded(5))
    b = run_sampler(None, toy_eps, schedule, x, 30, 10, TorchNoise.seeded(5))
    c = run_sampler(None, toy_eps, schedule, x, 30, 10, TorchNoise.seeded(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    short = RecordedNoise([torch.zeros(1, 1, MELS, FRAMES)] * 29)
    with pytest.raises(RuntimeError, match="draw 30 requested"):
        run_sampler(None, toy_eps, schedule, x, 30, 10, short)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "ddpm"])
def test_ode_samplers_draw_nothing(schedule, method):
    x = torch.randn(1, 1, MELS, FRAMES, generator=torch.Generator().manual_seed(2))
    run_sampler(method, toy_eps, schedule, x, 100, 10, RecordedNoise([]))  # any draw would raise
