"""RVC v1/v2 voices (RVC WebUI / Applio .pth files) on svc_core's engine.

Public names (imported on first use): RvcHParams, preset, RvcSynthesizer, RvcOutput, RvcCheckpoint, rvc_kind,
read_rvc_checkpoint, save_rvc_small, save_rvc_training, rvc_training_config, RvcVoice,
load_rvc_voice.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RvcHParams": ".hparams", "preset": ".hparams",
    "RvcSynthesizer": ".synthesizer", "RvcOutput": ".synthesizer",
    "RvcCheckpoint": ".checkpoint", "rvc_kind": ".checkpoint", "read_rvc_checkpoint": ".checkpoint",
    "save_rvc_small": ".checkpoint", "save_rvc_training": ".checkpoint", "rvc_training_config": ".checkpoint",
    "RvcVoice": ".voice", "load_rvc_voice": ".voice",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
