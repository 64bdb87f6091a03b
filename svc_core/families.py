"""Which model family a voice file belongs to, and what runs it: the one table the CLI, the page and the APIs ask.

| family        | files                                                        | engine                  |
|---------------|--------------------------------------------------------------|-------------------------|
| so-vits       | G_*.pth + config.json (so-vits-svc 4.0 / 4.1)                | Svc, torch              |
| world         | W_*.pth + config.json with a "worldvoice" section (starters) | Svc, torch              |
| rvc           | <name>.pth (RVC WebUI / Applio model, or an RVC G_*.pth)     | Svc, torch              |
| so-vits-onnx  | .onnx export (ours, upstream's <name>_SoVits.onnx, MoeVS)    | OnnxSvc, ONNX Runtime   |
| rvc-onnx      | .onnx with RVC's exporter inputs (phone, pitch, ds, rnd)     | Svc, ONNX Runtime       |

A file's family comes from what it holds (its tensor names, an ONNX file's input names), never from code in it:
.pth files are opened by svc_core.safe_load (weights only, tensors memory-mapped, so peeking is cheap).
Each family lists the conversion options a front end offers for it (`controls`) and its own option defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ModelError, OptionError

TORCH = "torch"
ONNX = "onnx"

# ConvertOptions fields by purpose (a front end shows a family's `controls`, hides the rest)
COMMON_CONTROLS = ("transpose", "f0_predictor", "f0_threshold", "cluster_ratio", "loudness_mix", "seed")
SOVITS_CONTROLS = COMMON_CONTROLS + (
    "auto_predict_f0", "noise_scale", "slice_db", "pad_seconds", "clip_seconds", "crossfade_seconds",
    "crossfade_ratio", "max_slice_seconds", "max_slice_crossfade", "decoder_chunk_frames", "vocoder_precision",
    "encoder_precision", "max_pieces", "shallow_diffusion", "only_diffusion", "k_step", "diffusion_method",
    "diffusion_speedup", "diffusion_precision", "second_encoding", "enhance", "enhancer_adaptive_key")
RVC_CONTROLS = COMMON_CONTROLS + ("protect", "filter_radius", "resample_sr", "decoder_chunk_frames",
                                  "encoder_precision", "vocoder_precision")
RVC_PITCH_CONTROLS = ("transpose", "f0_predictor", "f0_threshold", "protect", "filter_radius")  # need an f0 model
RVC_DEFAULTS = {"loudness_mix": 0.25}  # RVC WebUI's rms_mix_rate default (so-vits keeps the model's loudness: 1)
RVC_INDEX_RATE = 0.75  # RVC WebUI's index_rate default, used when the voice has an index file


@dataclass(frozen=True)
class Family:
    """One kind of voice model."""

    name: str
    label: str  # what a person reads: "RVC v1/v2"
    engine: str  # TORCH or ONNX
    needs_config: bool  # a config.json must come with the model file
    controls: tuple[str, ...]  # ConvertOptions fields that apply
    defaults: Mapping[str, Any] = field(default_factory=dict)  # option defaults that differ from ConvertOptions'

    @property
    def is_rvc(self) -> bool:
        return self.name.startswith("rvc")


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("so-vits", "so-vits-svc 4.x", TORCH, True, SOVITS_CONTROLS),
    Family("world", "WORLD starter voice", TORCH, True, SOVITS_CONTROLS),
    Family("rvc", "RVC v1/v2 (RVC WebUI, Applio)", TORCH, False, RVC_CONTROLS, RVC_DEFAULTS),
    Family("so-vits-onnx", "so-vits-svc ONNX export", ONNX, False, SOVITS_CONTROLS),
    Family("rvc-onnx", "RVC ONNX export", ONNX, False, RVC_CONTROLS, RVC_DEFAULTS),
)}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise OptionError(f"Unknown model family '{name}'; known: {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def _state_keys(obj: Any) -> set[str]:
    """Tensor names of a loaded checkpoint object: its 'model' or 'weight' dict, or the object itself."""
    if not isinstance(obj, Mapping):
        return set()
    for key in ("model", "weight"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            return {str(k) for k in inner}
    return {str(k) for k in obj}


def _pth_family(path: str, config_path: str | None) -> str:
    from .safe_load import load_torch

    obj = load_torch(path, what="voice model")  # tensors memory-mapped: nothing large is read here
    from .rvc.checkpoint import rvc_kind

    if rvc_kind(obj) is not None:  # an RVC WebUI / Applio model, or an RVC training G_*.pth
        return "rvc"
    keys = {k[len("module."):] if k.startswith("module.") else k for k in _state_keys(obj)}
    if "head.3.weight" in keys:
        return "world"
    if config_path is not None:
        from .config import load_config
        from .worldvoice.model import is_world_config

        if is_world_config(load_config(config_path)):
            return "world"
    return "so-vits"  # read_generator_state names what is missing when it is not one


def _onnx_family(path: str) -> str:
    try:
        from .onnx.rvc_runtime import is_rvc_onnx
    except ImportError:  # ONNX Runtime support not installed: the so-vits loader says so
        return "so-vits-onnx"
    return "rvc-onnx" if is_rvc_onnx(path) else "so-vits-onnx"


def identify(model_path: str | os.PathLike, config_path: str | os.PathLike | None = None) -> Family:
    """The family of a voice model file (ModelError for a file that is none of them)."""
    path = os.fspath(model_path)
    config = None if config_path is None else os.fspath(config_path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".onnx":
        return FAMILIES[_onnx_family(path)]
    if suffix in (".pth", ".pt", ".ckpt"):
        return FAMILIES[_pth_family(path, config)]
    raise ModelError(f"'{os.path.basename(path)}' is not a voice model file: expected a .pth (so-vits-svc G_*.pth, "
                     "RVC / Applio model, WORLD W_*.pth) or an .onnx export.")


def load_model(model_path: str | os.PathLike, config_path: str | os.PathLike | None,
               device: str = "cpu") -> Any:
    """The synthesizer of a torch-run voice (so-vits, WORLD, RVC), with `.config` (SvcConfig) and `.family`."""
    kind = identify(model_path, config_path)
    name = os.path.basename(os.fspath(model_path))
    if kind.name == "rvc":
        from .rvc.voice import load_rvc_voice

        return load_rvc_voice(model_path, device=device, config_path=config_path)
    if kind.name == "rvc-onnx":
        from .onnx.rvc_runtime import RvcOnnxVoice

        return RvcOnnxVoice(model_path, device=device)
    if kind.engine == ONNX:
        raise ModelError(f"'{name}' is an ONNX export of a so-vits model: it runs on svc_core.onnx.OnnxSvc.")
    if config_path is None:
        raise OptionError(f"'{name}' is a {kind.label} model: it needs its config.json (-c / config_path).")
    from .checkpoint import load_synthesizer

    model = load_synthesizer(model_path, config_path, device=device)
    model.family = kind.name
    return model


def check_options(kind: Family, opts: Any, has_f0: bool = True) -> None:
    """OptionError naming every option changed from its default that a voice of this family does not use
    (has_f0=False: an RVC model without a pitch input, which also ignores the f0 options)."""
    from dataclasses import fields

    allowed = set(kind.controls) - (set() if has_f0 else set(RVC_PITCH_CONTROLS))
    unused = opts.changed(f.name for f in fields(opts) if f.name not in allowed)
    for name, value in kind.defaults.items():  # the family's own defaults count as unchanged
        if name in unused and getattr(opts, name) == value:
            unused.remove(name)
    if not unused:
        return
    what = "an RVC model without pitch input (a *_nono / f0 0 model)" if not has_f0 else f"{kind.label} voices"
    raise OptionError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to {what}; leave "
                      f"{'it' if len(unused) == 1 else 'them'} at the default. Options that apply: "
                      f"{', '.join(sorted(allowed))}.")


def option_defaults(kind: Family, has_index: bool) -> dict[str, Any]:
    """The option defaults for a voice of this family (RVC: rms mix 0.25, index rate 0.75 with an index)."""
    out = dict(kind.defaults)
    if kind.is_rvc and has_index:
        out["cluster_ratio"] = RVC_INDEX_RATE
    return out


__all__ = ["FAMILIES", "Family", "ONNX", "RVC_CONTROLS", "RVC_DEFAULTS", "RVC_PITCH_CONTROLS", "SOVITS_CONTROLS",
           "TORCH", "check_options", "family", "identify", "load_model", "option_defaults"]
