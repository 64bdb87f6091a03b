"""DDIM, PNDM, DPM-Solver(++), UniPC against upstream's recorded runs (parity/diffusion/sampler_<method>.npz).

The recorded denoiser calls are replayed (tests/diffusion/sampler_replay.py): every call's step and input must be
upstream's, and the final mel too. k100 / k37 store every call; `full` (only-diffusion, 1000 -> 0) stores calls
0, 1, 2 and the last two, so there the first calls are replayed and the step sequence checked to the end.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.noise import RecordedNoise
from svc_core.diffusion.samplers import denoiser_calls, run_sampler
from svc_core.diffusion.schedule import Schedule

from .sampler_replay import K_STEP_MAX, Replay, StopReplay, denorm, load_case, shallow_start

SPEEDUP = 10  # the fixtures' infer_speedup
MEL_ATOL = 1e-5  # log-mel units; the replay gives 0 on the generating machine's torch
ODE_METHODS = ("ddim", "pndm", "dpm-solver", "dpm-solver++", "unipc")
SHALLOW = (("k100", 100), ("k37", 37))


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return Schedule.linear(K_STEP_MAX)


@pytest.mark.parametrize("case,k_step", SHALLOW)
@pytest.mark.parametrize("method", ODE_METHODS)
def test_shallow_run_replays_upstream(parity_dir, schedule, method, case, k_step):
    rec = load_case(parity_dir, method, case)
    start = torch.from_numpy(rec["x"][0])
    # the start x is q_sample(norm(gt_mel), k_step - 1, the recorded draw): the caller's job, checked here once
    assert torch.allclose(shallow_start(rec, k_step, schedule), start, atol=1e-6, rtol=0)
    replay = Replay(rec)
    kept = start.clone()
    x0 = run_sampler(method, replay, schedule, start, k_step, SPEEDUP, RecordedNoise([]))
    assert replay.call == int(rec["n_calls"]) == denoiser_calls(method, k_step, SPEEDUP)
    assert torch.equal(start, kept), "the sampler changed its input in place"
    err = float((denorm(x0) - torch.from_numpy(rec["mel"])).abs().max())
    assert err <= MEL_ATOL, f"{method} {case}: mel differs from upstream by {err}"


@pytest.mark.parametrize("method", ODE_METHODS)
def test_only_diffusion_steps_and_first_calls(parity_dir, schedule, method):
    """From pure noise at t = 1000: calls 0-2 replayed (their inputs are the sampler's own first updates), then a
    stand-in denoiser (0.1 x) to the end: every step value and dtype, and the call count, as upstream."""
    rec = load_case(parity_dir, method, "full")
    replay = Replay(rec, fallback=lambda x: 0.1 * x)
    out = run_sampler(method, replay, schedule, torch.from_numpy(rec["x"][0]), K_STEP_MAX, SPEEDUP,
                      RecordedNoise([]))
    assert replay.faked and replay.call == int(rec["n_calls"]) == denoiser_calls(method, K_STEP_MAX, SPEEDUP)
    assert replay.seen_t == [float(t) for t in rec["t"]]
    assert torch.isfinite(out).all()


def test_only_diffusion_ddim_tail_reaches_upstream_mel(parity_dir, schedule):
    """DDIM keeps no history, so its last two recorded calls (t = 10, 0) can be replayed from the recorded input of
    call 98: the final mel must be upstream's full_mel (|mel| ~ 1e3 here: relative tolerance)."""
    rec = load_case(parity_dir, "ddim", "full")
    replay = Replay(rec, first_call=98)
    x0 = run_sampler("ddim", replay, schedule, torch.from_numpy(rec["x"][3]), 20, SPEEDUP, RecordedNoise([]))
    assert replay.call == 100
    want = torch.from_numpy(rec["mel"])
    assert torch.allclose(denorm(x0), want, rtol=1e-5, atol=MEL_ATOL * float(want.abs().max()))


@pytest.mark.parametrize("method,other", [("ddim", "pndm"), ("pndm", "ddim"), ("dpm-solver", "dpm-solver++"),
                                          ("dpm-solver++", "unipc"), ("unipc", "dpm-solver++")])
def test_replay_notices_a_wrong_sampler(parity_dir, schedule, method, other):
    """The replay is strict: a sibling's recording (same step dtype; the first update is the same DDIM-like jump for
    each pair) fails on a later call's step or input (the smallest difference here is 2.4e-4, at call 3)."""
    rec = load_case(parity_dir, other, "k100")
    replay = Replay(rec)
    with pytest.raises(AssertionError, match=r"call [2-9]: (input differs|t \[)"):
        run_sampler(method, replay, schedule, torch.from_numpy(rec["x"][0]), 100, SPEEDUP, RecordedNoise([]))


def test_replay_stops_at_unstored_calls(parity_dir, schedule):
    rec = load_case(parity_dir, "pndm", "full")
    replay = Replay(rec)
    with pytest.raises(StopReplay):
        run_sampler("pndm", replay, schedule, torch.from_numpy(rec["x"][0]), K_STEP_MAX, SPEEDUP, RecordedNoise([]))
    assert replay.call == 4 and replay.x_err <= 1e-5  # calls 0-2 replayed (incl. PNDM's extra first call)


@pytest.mark.parametrize("name,t_start", [("e2e_shallow.npz", 100), ("e2e_only_diffusion.npz", K_STEP_MAX)])
def test_end_to_end_run_steps(parity_dir, schedule, name, t_start):
    """Svc.slice_inference's diffusion stage (dpm-solver++, speedup 10, 516 frames): call 0 replayed from the
    recorded start x, then a stand-in denoiser; every step as upstream's run."""
    data = np.load(parity_dir / "diffusion" / name)
    rec = {"t": data["diff_t"], "call_idx": np.array([0]), "x": data["diff_call0_x"][None],
           "eps": data["diff_call0_eps"][None], "t_dtype": "float32"}
    start = torch.from_numpy(data["diff_call0_x"])
    if t_start < K_STEP_MAX:
        case = {"gt_mel": data["gt_mel"], "noise": data["diff_noise"]}
        assert torch.allclose(shallow_start(case, t_start, schedule), start, atol=1e-6, rtol=0)
    replay = Replay(rec, fallback=lambda x: 0.1 * x)
    run_sampler("dpm-solver++", replay, schedule, start, t_start, SPEEDUP, RecordedNoise([]))
    assert replay.seen_t == [float(t) for t in data["diff_t"]]
