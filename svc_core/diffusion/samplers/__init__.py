"""The diffusion samplers of so-vits-svc 4.1, by name, and `run_sampler` that picks one.

Every sampler has the signature `(eps_fn, schedule, x, t_start, speedup, noise) -> x0` with x [B, 1, M, T] the
noised normalised mel at step t_start (k_step for shallow diffusion, k_step_max for only-diffusion) and x0 the
normalised mel [B, 1, M, T]; `eps_fn(x [B, 1, M, T], t [B]) -> eps [B, 1, M, T]` is the denoiser (t int64 for
DDPM / DDIM / PNDM, float32 for DPM-Solver(++) / UniPC, as upstream passes it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from ...errors import OptionError
from ...noise import NoiseSource
from ..schedule import Schedule
from .common import EpsFn, SamplerFn, strided_steps
from .ddim import sample_ddim
from .ddpm import sample_ddpm
from .dpm_solver import sample_dpm_solver
from .pndm import sample_pndm
from .unipc import sample_unipc
from .vp import solver_steps

DDPM = "ddpm"


@dataclass(frozen=True)
class SamplerEntry:
    """One sampler: its function, how many denoiser calls it makes, and what it is for."""

    name: str
    sample: SamplerFn
    calls: Callable[[int, int], int]  # (t_start, speedup) -> denoiser calls (0: the sampler cannot run)
    description: str


def _strided(t_start: int, speedup: int) -> int:
    return len(strided_steps(t_start, speedup))


SAMPLERS: dict[str, SamplerEntry] = {
    "dpm-solver++": SamplerEntry(
        "dpm-solver++", partial(sample_dpm_solver, data_prediction=True), solver_steps,
        "DPM-Solver++ 2M: 2nd-order multistep on the predicted clean mel, one call per step; upstream's default"),
    "dpm-solver": SamplerEntry(
        "dpm-solver", partial(sample_dpm_solver, data_prediction=False), solver_steps,
        "DPM-Solver 2M: 2nd-order multistep on the predicted noise, one call per step"),
    "unipc": SamplerEntry(
        "unipc", sample_unipc, solver_steps,
        "UniPC-bh2: 2nd-order predictor-corrector on the predicted clean mel, one call per step"),
    "pndm": SamplerEntry(
        "pndm", sample_pndm, lambda t, s: _strided(t, s) + 1,
        "PNDM/PLMS: up to 4-term linear multistep on the noise, one call per step plus one at the start"),
    "ddim": SamplerEntry(
        "ddim", sample_ddim, _strided,
        "DDIM: 1st-order and deterministic, one call per step"),
    DDPM: SamplerEntry(
        DDPM, sample_ddpm, lambda t, s: t,
        "ancestral DDPM: every step (speedup ignored) with fresh noise each step, k_step calls"),
}
METHODS = ("dpm-solver++", "dpm-solver", "unipc", "pndm", "ddim", "ddpm")


def resolve_method(method: str | None, speedup: int) -> str:
    """The sampler upstream runs for (method, speedup): DDPM when speedup <= 1 or method is None/empty.

    An unknown name is an OptionError listing the methods.
    """
    if method is None or not str(method).strip():
        return DDPM
    name = str(method).strip().lower()
    if name not in SAMPLERS:
        raise OptionError(f"Unknown diffusion sampler '{method}'. Choose one of: {', '.join(METHODS)}.")
    return DDPM if int(speedup) <= 1 else name


def denoiser_calls(method: str | None, t_start: int, speedup: int) -> int:
    """How many times `run_sampler` calls the denoiser (for progress bars and cost estimates)."""
    return SAMPLERS[resolve_method(method, speedup)].calls(int(t_start), max(int(speedup), 1))


def run_sampler(method: str | None, eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t_start: int,
                speedup: int, noise: NoiseSource) -> torch.Tensor:
    """Denoise x [B, 1, M, T] (noised to step t_start) down to x0 [B, 1, M, T] with the named sampler.

    speedup <= 1 or method None runs DDPM (one call per step, `noise.randn` at every step). The others visit every
    `speedup`-th step and draw nothing. With speedup <= t_start < 2 * speedup, DPM-Solver(++) and UniPC take one
    first-order step (upstream stops there with an AssertionError); t_start < speedup is an OptionError for them.
    """
    name = resolve_method(method, speedup)
    speedup = max(int(speedup), 1)
    t_start = int(t_start)
    if not 1 <= t_start <= schedule.timesteps:
        raise OptionError(f"The diffusion start step must be between 1 and {schedule.timesteps}, got {t_start}.")
    if x.dim() != 4 or x.shape[1] != 1:
        raise OptionError(f"The sampler expects x as [batch, 1, mels, frames], got shape {tuple(x.shape)}.")
    entry = SAMPLERS[name]
    if entry.calls(t_start, speedup) < 1:
        raise OptionError(f"k_step {t_start} is smaller than the speedup {speedup}: the '{name}' sampler would take "
                          f"no step. Use a k_step of at least {speedup} or a smaller speedup.")
    with torch.no_grad():
        return entry.sample(eps_fn, schedule, x, t_start, speedup, noise)
