"""Name -> separator table (built-in network, DSP baselines, community model families), with a per-name check of
whether it can run here. Shaped like `svc_core/f0/registry.py`; `doctor` lists `separator_status()`."""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import OptionError, SvcError
from .base import Separator

DEFAULT_SEPARATOR = "starter"
MODELS_DIR_ENV = "SVC_SEPARATION_DIR"  # folder of community separation models; default ./separation_models


@dataclass(frozen=True)
class SeparatorEntry:
    """How to build one separator and what it needs."""

    cls_path: str  # ".module.Class" under svc_core.separation; the class takes (model_path=None, **options)
    label: str  # menu name
    kind: str  # "network" (ours, shipped), "dsp" (baseline), "community" (a file the user downloads)
    packages: tuple[tuple[str, str], ...] = ()  # (import name, pip name)
    file_suffixes: tuple[str, ...] = ()  # community: model file endings this family reads (empty: no file)
    description: str = ""  # quality / speed in one line (figures from docs/covers.md)

    def build(self, model_path: Optional[str | os.PathLike] = None, **options) -> Separator:
        module, _, name = self.cls_path.rpartition(".")
        cls = getattr(importlib.import_module(module, __package__), name)
        return cls(model_path=model_path, **options)


_REGISTRY: dict[str, SeparatorEntry] = {
    # descriptions: median vocals SDR over the song as is on the 48-song test set, 3-min song on 2 threads
    # (docs/covers.md, bench/last_separation_quality.json, bench/last_cover.json)
    "starter": SeparatorEntry(".starter_net.StarterSeparator", "Starter network (built in)", "network",
                              (("torch", "torch"),),
                              description="best here: vocals SDR +6.7 dB over the song; a 3-min song in ~3 s"),
    "repet-sim": SeparatorEntry(".dsp.RepetSimSeparator", "REPET-SIM (DSP baseline)", "dsp",
                                (("librosa", "librosa"),),
                                description="DSP, no model: vocals SDR +2.4 dB; a 3-min song in ~12 s"),
    "hpss": SeparatorEntry(".dsp.HpssSeparator", "HPSS (DSP baseline)", "dsp", (("librosa", "librosa"),),
                           description="DSP, for comparison: vocals SDR +1.1 dB; a 3-min song in ~17 s"),
    "mdx": SeparatorEntry(".community.mdx.MdxSeparator", "MDX-Net (UVR .onnx)", "community",
                          (("onnxruntime", "onnxruntime"), ("torch", "torch")), (".onnx",),
                          description="UVR-MDX-NET models such as Inst_HQ_3, Kim_Vocal_2 (settings by file hash or "
                                      "a .yaml beside the file)"),
    "demucs": SeparatorEntry(".community.demucs.DemucsSeparator", "Demucs v4 (htdemucs)", "community",
                             (("torch", "torch"), ("demucs", "demucs")), (".th", ".safetensors", ".yaml"),
                             description="Hybrid Transformer Demucs htdemucs (.th) / htdemucs_ft (bag .yaml + its "
                                         ".th files); 4 stems"),
    "roformer": SeparatorEntry(".community.roformer.RoformerSeparator", "BS-/Mel-RoFormer (.ckpt + .yaml)",
                               "community", (("torch", "torch"), ("librosa", "librosa")), (".ckpt",),
                               description="band-split / mel-band RoFormer checkpoints with their MSST .yaml"),
    "vr": SeparatorEntry(".community.vr.VrSeparator", "VR arch (UVR .pth)", "community", (("torch", "torch"),),
                         (".pth",), description="UVR VR-architecture models (listed; no loader yet)"),
}


def list_separators() -> list[str]:
    return list(_REGISTRY)


def separator_entry(name: str) -> SeparatorEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise OptionError(f"Unknown separator '{name}'. Choose one of: {', '.join(_REGISTRY)}.") from None


def models_dir(path: Optional[str | os.PathLike] = None) -> Path:
    """The community models folder: `path`, else $SVC_SEPARATION_DIR, else ./separation_models."""
    return Path(path or os.environ.get(MODELS_DIR_ENV) or "separation_models")


def _why_not(name: str) -> str | None:
    entry = separator_entry(name)
    for module, pip_name in entry.packages:
        if importlib.util.find_spec(module) is None:
            return f"needs the Python package '{pip_name}' (pip install {pip_name})."
    module = entry.cls_path.rpartition(".")[0]
    try:
        found = importlib.util.find_spec(module, __package__)
    except ModuleNotFoundError:  # its parent package is absent
        found = None
    if found is None:
        return "has no loader in this version: its files are listed, not run (docs/covers.md)."
    return None


def separator_status() -> dict[str, str | None]:
    """{name: None if it can run here (community: given a model file), else what is missing}. Loads nothing."""
    return {name: _why_not(name) for name in _REGISTRY}


def get_separator(name: str, model_path: Optional[str | os.PathLike] = None, **options) -> Separator:
    """Build separator `name` (community families need `model_path`). OptionError for unknown or unusable names."""
    entry = separator_entry(name)
    problem = _why_not(name)
    if problem is not None:
        raise OptionError(f"The '{name}' separator cannot run here: it {problem}")
    if entry.kind == "community" and model_path is None:
        raise OptionError(f"The '{name}' separator needs a model file ({', '.join(entry.file_suffixes)}); download "
                          f"one into {models_dir()} (see docs/covers.md).")
    if entry.kind != "community" and model_path is not None:
        raise SvcError(f"The '{name}' separator takes no model file.")
    return entry.build(model_path, **options)
