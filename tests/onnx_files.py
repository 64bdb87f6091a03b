"""Helpers for tests that change an ONNX export on disk."""
from __future__ import annotations

import shutil
from pathlib import Path

from svc_core.onnx.split_export import split_paths


def copy_export(src: Path, dst: Path) -> Path:
    """A private copy of a shared export (the model, its split pair and manifest) in `dst`; adding an int8 vocoder
    changes the manifest, so tests that do so work on a copy."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in [src, *split_paths(src).values(), src.with_name(src.name + ".json")]:
        shutil.copy(path, dst / path.name)
    return dst / src.name
