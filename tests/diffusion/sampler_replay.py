"""Replays upstream's recorded denoiser calls (parity/diffusion/sampler_<method>.npz) for the sampler tests.

`Replay` stands in for the denoiser: for call i it checks the step t (value and dtype) against the recorded t[i]
and, when call i was stored, the input x against the recorded x[i], then returns the recorded eps[i]. Calls that
were not stored either stop the run (`StopReplay`) or, for sequence-only checks, return `fallback(x)`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from svc_core.diffusion.schedule import Schedule

SPEC_MIN, SPEC_MAX = -12.0, 2.0  # upstream's mel normalisation range
X_ATOL = 1e-5  # recorded denoiser inputs
T_ATOL = 0.0  # recorded steps: computed exactly as upstream does
FILES = {"ddim": "sampler_ddim.npz", "pndm": "sampler_pndm.npz", "dpm-solver": "sampler_dpm_solver.npz",
         "dpm-solver++": "sampler_dpm_solver_pp.npz", "unipc": "sampler_unipc.npz", "ddpm": "sampler_ddpm.npz",
         "ddpm-full": "sampler_ddpm_full.npz"}
K_STEP_MAX = 1000  # the dev model's k_step_max 0 -> the full 1000-step chain


class StopReplay(Exception):
    """The sampler reached a call whose input and output were not recorded."""


def load_case(parity_dir: Path, key: str, case: str) -> dict[str, np.ndarray]:
    """The arrays of one case without their prefix, plus 't_dtype' from meta.json."""
    name = FILES[key]
    data = np.load(parity_dir / "diffusion" / name)
    out = {k[len(case) + 1:]: data[k] for k in data.files if k.startswith(case + "_")}
    out.update({k: data[k] for k in ("gt_mel",) if k in data.files})
    meta = json.loads((parity_dir / "diffusion" / "meta.json").read_text())
    out["t_dtype"] = meta["files"][name]["cases"][case]["t_dtype"][0]
    return out


class Replay:
    """A denoiser that replays calls `first_call`, `first_call + 1`, ... of a recorded case."""

    def __init__(self, case: dict, first_call: int = 0, fallback: Optional[Callable] = None) -> None:
        self.case = case
        self.stored = {int(c): j for j, c in enumerate(case["call_idx"])}
        self.call = first_call
        self.fallback = fallback
        self.faked = False  # once a fallback output was used, later inputs no longer follow upstream's
        self.dtype = {"int64": torch.int64, "float32": torch.float32}[case["t_dtype"]]
        self.seen_t: list[float] = []
        self.x_err = 0.0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i = self.call
        self.call += 1
        assert t.dtype == self.dtype, f"call {i}: step dtype {t.dtype}, upstream {self.dtype}"
        assert tuple(t.shape) == (x.shape[0],), f"call {i}: step shape {tuple(t.shape)} for batch {x.shape[0]}"
        self.seen_t.append(float(t[0]))
        assert i < len(self.case["t"]), f"call {i}: upstream made only {len(self.case['t'])} calls"
        assert torch.all(t.double() == float(self.case["t"][i])), f"call {i}: t {t.tolist()} != {self.case['t'][i]}"
        j = self.stored.get(i)
        if j is None or self.faked:
            if self.fallback is None:
                raise StopReplay(i)
            self.faked = True
            return self.fallback(x)
        want = torch.from_numpy(self.case["x"][j]).expand_as(x)
        err = float((x - want).abs().max())
        self.x_err = max(self.x_err, err)
        assert err <= X_ATOL * max(1.0, float(want.abs().max())), f"call {i}: input differs from upstream by {err}"
        return torch.from_numpy(self.case["eps"][j].copy()).expand_as(x).clone()


def denorm(x0: torch.Tensor) -> torch.Tensor:
    """Normalised x0 [B, 1, M, T] -> log-mel [B, T, M], as upstream's denorm_spec."""
    return ((x0 + 1) / 2 * (SPEC_MAX - SPEC_MIN) + SPEC_MIN).squeeze(1).transpose(1, 2)


def shallow_start(case: dict, k_step: int, schedule: Schedule) -> torch.Tensor:
    """q_sample(norm(gt_mel), k_step - 1, recorded noise) [1, 1, M, T]."""
    gt = torch.from_numpy(case["gt_mel"])
    norm = ((gt - SPEC_MIN) / (SPEC_MAX - SPEC_MIN) * 2 - 1).transpose(1, 2)[:, None]
    noise = torch.from_numpy(case["noise"].reshape(-1, *norm.shape[1:])[:1])
    t = k_step - 1
    return schedule.sqrt_alphas_cumprod[t] * norm + schedule.sqrt_one_minus_alphas_cumprod[t] * noise
