"""The phonevec encoder file: `{"format": "svc-phonevec", "version": 1, "config": {...}, "phones": [...],
"model": state_dict}` (plus optional "meta": plain strings/numbers describing the training run).

Tensors may be stored as float16 (`half=True`, half the size) and are read back as float32. Files are read
only through `svc_core.safe_load.load_torch` (weights_only; anything else is refused with UnsafeFileError).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from ..errors import ModelError
from ..safe_load import load_torch
from .model import PhoneVec, PhoneVecConfig
from .text import PHONE_SET

FORMAT = "svc-phonevec"
VERSION = 1


def encoder_state(model: PhoneVec, half: bool = False, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint dict for `model` (tensors on the CPU, float16 when `half`)."""
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu().clone())
             for k, v in model.state_dict().items()}
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "config": model.cfg.to_dict(),
                           "phones": list(PHONE_SET.phones), "model": state}
    if meta:
        out["meta"] = dict(meta)
    return out


def save_encoder(path: str | os.PathLike, model: PhoneVec, half: bool = False,
                 meta: Mapping[str, Any] | None = None) -> None:
    """Write the encoder file atomically."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(encoder_state(model, half, meta), path + ".part")
    os.replace(path + ".part", path)


def model_from_checkpoint(checkpoint: Any, name: str) -> PhoneVec:
    """Validate a loaded checkpoint dict and build the model (CPU, eval mode, float32)."""
    if not isinstance(checkpoint, Mapping) or checkpoint.get("format") != FORMAT:
        raise ModelError(f"'{name}' is not a phonevec encoder file (no \"format\": \"{FORMAT}\" inside).")
    if checkpoint.get("version") != VERSION:
        raise ModelError(f"'{name}' is phonevec format version {checkpoint.get('version')}; this build reads "
                         f"version {VERSION}.")
    if list(checkpoint.get("phones", [])) != list(PHONE_SET.phones):
        raise ModelError(f"'{name}' was trained on a different phone inventory than this build's.")
    try:
        cfg = PhoneVecConfig.from_dict(checkpoint["config"])
    except (KeyError, TypeError) as err:
        raise ModelError(f"'{name}' has an unreadable phonevec config: {err}") from None
    state = checkpoint.get("model")
    if not isinstance(state, Mapping):
        raise ModelError(f"'{name}' has no model state dict.")
    model = PhoneVec(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(f"'{name}' does not match its own phonevec config: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}.")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected[key].shape):
            raise ModelError(f"'{name}': tensor '{key}' has the wrong type or shape for its config.")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def load_encoder(path: str | os.PathLike) -> PhoneVec:
    """Read a phonevec encoder file safely -> PhoneVec on the CPU in eval mode."""
    path = os.fspath(path)
    checkpoint = load_torch(path, what="phonevec encoder")
    return model_from_checkpoint(checkpoint, os.path.basename(path))
