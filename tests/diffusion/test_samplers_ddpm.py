"""Ancestral DDPM (speedup <= 1 or no method) against upstream's recorded runs (sampler_ddpm*.npz).

Upstream stored calls 0, 1, 2 and the last two of each run, plus every noise draw. DDPM keeps no history, so the
head (calls 0-2: the sampler's own x0 clamp, posterior mean and noise) and the tail (the last two calls from the
recorded input of the second-to-last, down to the final mel) are replayed exactly; the middle needs the real
denoiser (the lead's end-to-end check). The step sequence and the draw count are checked over the whole run.
"""
from __future__ import annotations

import pytest
import torch

from svc_core.noise import RecordedNoise
from svc_core.diffusion.samplers import denoiser_calls, run_sampler
from svc_core.diffusion.schedule import Schedule

from .sampler_replay import K_STEP_MAX, Replay, StopReplay, denorm, load_case

MEL_ATOL = 1e-5
CASES = (("ddpm", "k100", 100), ("ddpm", "k37", 37), ("ddpm-full", "full", K_STEP_MAX))


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return Schedule.linear(K_STEP_MAX)


def _draws(rec, first: int, last: int) -> RecordedNoise:
    """The recorded draws first..last-1 (draw 0 is the start x's noise; step j of the run uses draw j + 1)."""
    return RecordedNoise([rec["noise"][j] for j in range(first, last)])


@pytest.mark.parametrize("key,case,k_step", CASES)
def test_head_replays_upstream(parity_dir, schedule, key, case, k_step):
    rec = load_case(parity_dir, key, case)
    replay = Replay(rec)
    with pytest.raises(StopReplay):
        run_sampler(None, replay, schedule, torch.from_numpy(rec["x"][0]), k_step, 1, _draws(rec, 1, 4))
    assert replay.call == 4 and replay.seen_t == [k_step - 1 - i for i in range(4)]


@pytest.mark.parametrize("key,case,k_step", CASES)
def test_tail_reaches_upstream_mel(parity_dir, schedule, key, case, k_step):
    rec = load_case(parity_dir, key, case)
    n = int(rec["n_calls"])
    replay = Replay(rec, first_call=n - 2)
    noise = _draws(rec, n - 1, n + 1)
    x0 = run_sampler("ddpm", replay, schedule, torch.from_numpy(rec["x"][3]), 2, 10, noise)
    assert replay.call == n and noise.exhausted  # t = 0 draws too (multiplied by 0), as upstream
    want = torch.from_numpy(rec["mel"])
    err = float((denorm(x0) - want).abs().max())
    assert err <= MEL_ATOL, f"{case}: mel differs from upstream by {err}"


@pytest.mark.parametrize("key,case,k_step", CASES)
def test_every_step_and_draw(parity_dir, schedule, key, case, k_step):
    """The whole run with a stand-in denoiser after the stored head: steps k-1..0, one draw per step."""
    rec = load_case(parity_dir, key, case)
    replay = Replay(rec, fallback=lambda x: 0.1 * x)
    noise = _draws(rec, 1, len(rec["noise"]))
    out = run_sampler(None, replay, schedule, torch.from_numpy(rec["x"][0]), k_step, 10, noise)
    assert replay.call == int(rec["n_calls"]) == denoiser_calls(None, k_step, 10) == k_step
    assert replay.seen_t == [float(t) for t in rec["t"]]
    assert noise.exhausted and len(rec["draw_ops"]) == k_step + 1
    assert torch.isfinite(out).all()
