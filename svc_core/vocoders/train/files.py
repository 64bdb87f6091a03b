"""The files of a vocoder training run (all in the run folder):

    model_{step}        {'generator': state_dict} in openvpi's layout (weight_g / weight_v keys)
    state_{step}.pt     {'step', 'discriminator' (so-vits MultiPeriodDiscriminator keys), 'optim_g', 'optim_d',
                         'd_width_divisor'}: what resuming needs beyond the generator
    config.json         openvpi's config.json fields (the generator and mel settings, plus its training values)
    model               the best checkpoint by validation mel L1 so far: the folder loads with load_mel_vocoder
    checkpoints.json    validation mel L1 of every kept step (svc_core.train.checkpoints.CheckpointKeeper)

Everything is read back through svc_core.safe_load (never unpickling code).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ...config import read_config_json
from ...errors import ModelError
from ...models.weight_norm import norm_except_dim0, to_internal, upstream_items
from ...safe_load import load_torch
from ...train.checkpoints import CheckpointLayout
from ..loader import (CONFIG_FILE, MODEL_FILE, check_state, config_beside, read_vocoder_state, resolve_model_file,
                      vocoder_config_from_dict)
from ..nsf_hifigan import NsfHifiGAN, VocoderConfig

STEP_MODEL = "model_{}"
STEP_STATE = "state_{}.pt"
# model_{step} or state_{step}.pt (the lookahead keeps one "step" group for both names)
VOCODER_LAYOUT = CheckpointLayout(re.compile(r"^(?=model_\d+$|state_\d+\.pt$)(?:model|state)_(?P<step>\d+)"),
                                  lambda s: (STEP_MODEL.format(s), STEP_STATE.format(s)),
                                  "validation mel L1 of the vocoder (lower is better)", "val_mel")


def config_dict(cfg: VocoderConfig, extras: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """openvpi's config.json body for `cfg` (lists, not tuples) plus `extras` (its training values)."""
    body = {}
    for key, value in dataclasses.asdict(cfg).items():
        if isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        body[key] = value
    return {**dict(extras or {}), **body}


def write_config(out_dir: Path, cfg: VocoderConfig, extras: Mapping[str, Any] | None = None) -> Path:
    path = out_dir / CONFIG_FILE
    path.write_text(json.dumps(config_dict(cfg, extras), indent=2) + "\n", encoding="utf-8")
    return path


def read_config(path: Path) -> VocoderConfig:
    return vocoder_config_from_dict(read_config_json(path), source=str(path))


def _replace_atomically(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def generator_payload(generator: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """{'generator': upstream-keyed float32 tensors on the CPU} (openvpi's `model` file)."""
    return {"generator": {k: v.detach().float().cpu().clone() for k, v in upstream_items(generator).items()}}


def save_step(out_dir: Path, step: int, generator: nn.Module, discriminator, optim_g, optim_d,
              d_width_divisor: int) -> tuple[Path, Path]:
    """model_{step} and state_{step}.pt, atomically."""
    model_path, state_path = out_dir / STEP_MODEL.format(step), out_dir / STEP_STATE.format(step)
    _replace_atomically(model_path, generator_payload(generator))
    _replace_atomically(state_path, {"step": int(step), "discriminator": discriminator.upstream_state_dict(),
                                     "optim_g": optim_g.state_dict(), "optim_d": optim_d.state_dict(),
                                     "d_width_divisor": int(d_width_divisor)})
    return model_path, state_path


def publish(out_dir: Path, step: int) -> Path:
    """Copy model_{step} to `model` (what load_mel_vocoder finds in the folder)."""
    target = out_dir / MODEL_FILE
    tmp = target.with_name(MODEL_FILE + ".tmp")
    shutil.copyfile(out_dir / STEP_MODEL.format(step), tmp)
    os.replace(tmp, target)
    return target


def latest_step(out_dir: Path) -> int | None:
    """The highest step with both model_{step} and state_{step}.pt, or None."""
    if not out_dir.is_dir():
        return None
    names = set(os.listdir(out_dir))
    steps = [int(m.group(1)) for m in map(re.compile(r"^model_(\d+)$").match, names) if m]
    both = [s for s in steps if STEP_STATE.format(s) in names]
    return max(both) if both else None


def read_state(path: Path) -> dict[str, Any]:
    obj = load_torch(path, what="vocoder training state")
    if not isinstance(obj, Mapping) or not isinstance(obj.get("discriminator"), Mapping):
        raise ModelError(f"'{path}' is not a vocoder training state (state_{{step}}.pt of train-vocoder).")
    return dict(obj)


def _expand_folded(generator: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A generator state whose weight norm was removed (plain `x.weight`) -> weight_g / weight_v keys."""
    out = dict(state)
    for key in upstream_items(generator):
        if key.endswith(".weight_g"):
            plain = key[: -len("_g")]
            if plain in out and key not in out:
                weight = out.pop(plain).float()
                out[key], out[plain + "_v"] = norm_except_dim0(weight), weight.clone()
    return out


def load_generator_file(generator: nn.Module, cfg: VocoderConfig, path: Path) -> None:
    """Load an openvpi `model` file into the trainable (weight-normed) generator; ModelError naming keys/fields."""
    state = read_vocoder_state(path)
    check_state(NsfHifiGAN(cfg), state, path.name, f"'{path.parent / CONFIG_FILE}'")
    state = {k: v.float() for k, v in _expand_folded(generator, state).items()}
    generator.load_state_dict(to_internal(generator, state), strict=True)


def base_files(base: str | os.PathLike) -> tuple[Path, VocoderConfig]:
    """(model file, its config) of a vocoder to fine-tune (the model file or its folder)."""
    model_path = resolve_model_file(base)
    return model_path, read_config(config_beside(model_path))
