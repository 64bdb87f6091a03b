"""Demucs v4 (htdemucs, htdemucs_ft, ...) through the `demucs` package's model classes, loaded our own safe way.

A demucs `.th` file is a torch pickle of {"klass": the model class (pickled by reference), "args", "kwargs" (its
constructor arguments), "state" (weights, fp16), "training_args"}; demucs itself reads it with
`torch.load(weights_only=False)`, which would run whatever the pickle names. We read it with weights_only=True
(svc_core.safe_load.load_torch): the class is resolved to an inert stand-in, then mapped to the real class only
if it is one of DEMUCS_CLASSES; the arguments must be plain values (numbers, strings, lists, dicts, fractions);
the model is first built on the "meta" device (no memory) and its weights' names and shapes compared with the
file's before the real one is built. demucs 4.1's Hugging Face files (`<signature>.safetensors`: weights, with
the class name and its arguments as JSON in the header) go through the same checks without any pickle. A bag of
models (htdemucs_ft.yaml: `models: [signature, ...]`, optional `weights`, `segment`) loads each
`<signature>[-<checksum>].th` (or `<signature>.safetensors`) beside it the same way.

Separation is demucs.apply.apply_model (its own overlapped segments, no random shifts: deterministic) on the
chunk normalised as demucs does (mean/std of the mono mix); vocals = the "vocals" source, accompaniment = the sum
of the others, which are also returned as extra stems (drums, bass, other, ...).
"""
from __future__ import annotations

import inspect
import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import ModelError, OptionError, UnsafeFileError
from ..base import ACCOMPANIMENT, VOCALS, Separator
from .common import YAML_SUFFIXES, read_yaml, require_model_file

# the classes a demucs checkpoint may name (module path as pickled by demucs's training code) -> (module, class)
DEMUCS_CLASSES = {
    "demucs.htdemucs.HTDemucs": ("demucs.htdemucs", "HTDemucs"),  # v4: htdemucs, htdemucs_ft, htdemucs_6s
    "demucs.hdemucs.HDemucs": ("demucs.hdemucs", "HDemucs"),  # v3: hdemucs_mmi, mdx_extra
    "demucs.demucs.Demucs": ("demucs.demucs", "Demucs"),  # v2 waveform models
}
PACKAGE_KEYS = ("klass", "args", "kwargs", "state")
MODEL_SUFFIXES = (".th", ".safetensors")
PLAIN_TYPES = (int, float, str, bool, type(None), Fraction)
MAX_BAG_MODELS = 16  # htdemucs_ft has 4
DEMUCS_OVERLAP = 0.25  # fraction of a demucs segment shared with its neighbour (demucs's default)
NORM_EPS = 1e-8


def _plain(value: Any, where: str, name: str) -> Any:
    """value if it is made of plain data only, else UnsafeFileError."""
    if isinstance(value, PLAIN_TYPES):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, where, name) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where, name) for k, v in value.items()}
    raise UnsafeFileError(f"Demucs model '{name}': {where} holds a {type(value).__name__}, not plain data; refused.")


def _model_class(qualified: str, name: str) -> type:
    if qualified not in DEMUCS_CLASSES:
        raise UnsafeFileError(f"Demucs model '{name}' names the class {qualified}, which is not a demucs model "
                              f"class ({', '.join(DEMUCS_CLASSES)}); refused.")
    import importlib

    module, cls = DEMUCS_CLASSES[qualified]
    return getattr(importlib.import_module(module), cls)


def _state_shapes(module: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _json_value(value: Any) -> Any:
    """demucs's JSON for constructor arguments -> values (fractions are {"_type": "fraction", ...})."""
    if isinstance(value, dict):
        if value.get("_type") == "fraction":
            return Fraction(int(value["numerator"]), int(value["denominator"]))
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _read_safetensors(path: str, name: str) -> tuple[str, dict]:
    """(class name, package) of a demucs .safetensors; no pickle involved."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
            if "structure" in meta:
                raise ModelError(f"'{name}' holds a nested (quantized) demucs state; not supported.")
            if not all(key in meta for key in ("klass", "args", "kwargs")):
                raise ModelError(f"'{name}' is not a demucs model file: its header lacks klass / args / kwargs.")
            state = {key: fh.get_tensor(key) for key in fh.keys()}
        args, kwargs = _json_value(json.loads(meta["args"])), _json_value(json.loads(meta["kwargs"]))
    except (SafetensorError, OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ModelError(f"'{name}' is not a readable demucs .safetensors file: {err}") from None
    return str(meta["klass"]), {"args": args, "kwargs": kwargs, "state": state}


def _read_package(path: str, name: str) -> tuple[str, Mapping]:
    """(qualified class name, {"args", "kwargs", "state", ...}) of a .th or .safetensors."""
    from ...safe_load import load_torch

    if path.lower().endswith(".safetensors"):
        return _read_safetensors(path, name)
    package = load_torch(path, "Demucs model", inert=DEMUCS_CLASSES, allowed=[Fraction])
    if not isinstance(package, Mapping) or any(key not in package for key in PACKAGE_KEYS):
        raise ModelError(f"'{name}' is not a demucs model file: it lacks "
                         f"{', '.join(k for k in PACKAGE_KEYS if not isinstance(package, Mapping) or k not in package)}"
                         " (a demucs .th holds klass, args, kwargs and state).")
    klass = package["klass"]
    return f"{getattr(klass, '__module__', '?')}.{getattr(klass, '__qualname__', repr(klass))}", package


def load_demucs_file(path: str | os.PathLike) -> Any:
    """One demucs .th / .safetensors -> the model (eval mode, float32, CPU). UnsafeFileError / ModelError."""
    import torch

    path = require_model_file(path, "Demucs model")
    name = os.path.basename(path)
    qualified, package = _read_package(path, name)
    cls = _model_class(qualified, name)
    args = _plain(list(package["args"]), "args", name)
    kwargs = _plain(dict(package["kwargs"]), "kwargs", name)
    state = package["state"]
    if not isinstance(state, Mapping):
        raise ModelError(f"'{name}': its state is not a dict of weights.")
    if state.get("__quantized"):
        raise ModelError(f"'{name}' is a DiffQ-quantized demucs model (mdx_q, mdx_extra_q); those need the diffq "
                         "package and are not supported. Use htdemucs / htdemucs_ft.")
    accepted = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}  # as demucs does: drop retired arguments
    try:
        with torch.device("meta"):
            skeleton = cls(*args, **kwargs)
    except Exception as err:  # the file's constructor arguments do not build this class
        raise ModelError(f"'{name}': its settings do not build a {cls.__name__} ({type(err).__name__}: {err}).") \
            from None
    want = _state_shapes(skeleton)
    have = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if want != have:
        missing = sorted(set(want) - set(have))[:3]
        odd = sorted(k for k in set(want) & set(have) if want[k] != have[k])[:3]
        raise ModelError(f"'{name}': its weights do not match its {cls.__name__} settings (missing {missing}, "
                         f"other shapes {odd}, {len(set(have) - set(want))} unknown); the file is damaged or edited.")
    model = cls(*args, **kwargs)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


def _bag_member(folder: Path, signature: str, bag_name: str) -> Path:
    found = sorted(p for p in folder.glob(f"{signature}*") if p.suffix.lower() in MODEL_SUFFIXES
                   and p.stem.split("-")[0] == signature)
    if not found:
        raise ModelError(f"Demucs bag '{bag_name}' needs '{signature}.th' (or '{signature}-<checksum>.th', "
                         f"'{signature}.safetensors') beside it in {folder}; download all the files the bag lists.")
    return found[0]


def load_demucs(path: str | os.PathLike) -> Any:
    """A .th / .safetensors (one model) or a bag .yaml (models beside it) -> a demucs model or BagOfModels."""
    from demucs.apply import BagOfModels

    path = require_model_file(path, "Demucs model")
    if not path.lower().endswith(YAML_SUFFIXES):
        return load_demucs_file(path)
    bag = read_yaml(path, "Demucs bag file")
    name = os.path.basename(path)
    models = bag.get("models") if isinstance(bag, Mapping) else None
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise ModelError(f"'{name}' is not a demucs bag of models: it needs `models: [signature, ...]`.")
    if len(models) > MAX_BAG_MODELS:
        raise ModelError(f"'{name}' lists {len(models)} models (at most {MAX_BAG_MODELS}).")
    loaded = [load_demucs_file(_bag_member(Path(path).parent, sig, name)) for sig in models]
    weights, segment = bag.get("weights"), bag.get("segment")
    try:
        return BagOfModels(loaded, weights, segment).eval()
    except AssertionError:
        raise ModelError(f"'{name}': its models have different sources or rates, or its weights do not match "
                         "them.") from None


class DemucsSeparator(Separator):
    """Demucs v4 models (.th, .safetensors or a bag .yaml). Options: shifts (random time shifts averaged, demucs's --shifts;
    0 = deterministic), segment_overlap (fraction)."""

    name = "demucs"
    chunk_seconds = 30.0
    overlap_seconds = 1.0

    def __init__(self, model_path: str | os.PathLike, shifts: int = 0,
                 segment_overlap: float = DEMUCS_OVERLAP) -> None:
        if not 0 <= segment_overlap < 1:
            raise OptionError(f"segment_overlap must be in [0, 1); got {segment_overlap}.")
        self.model_path = os.fspath(model_path)
        self.model = load_demucs(self.model_path)
        self.sources = list(self.model.sources)
        if VOCALS not in self.sources:
            raise ModelError(f"'{os.path.basename(self.model_path)}' separates {self.sources}, without vocals.")
        if self.model.audio_channels != 2:
            raise ModelError(f"'{os.path.basename(self.model_path)}' is a {self.model.audio_channels}-channel "
                             "model; covers need a stereo one.")
        self.sample_rate = int(self.model.samplerate)
        self.shifts = int(shifts)
        self.segment_overlap = float(segment_overlap)
        self.stems = (VOCALS, ACCOMPANIMENT) + tuple(s for s in self.sources if s != VOCALS)

    @property
    def label(self) -> str:
        return f"Demucs {Path(self.model_path).stem}"

    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """audio float32 [2, T] -> {"vocals", "accompaniment", each other source} float32 [2, T]."""
        import torch
        from demucs.apply import apply_model

        mix = torch.from_numpy(np.ascontiguousarray(audio, np.float32))
        mono = mix.mean(0)
        mean, std = mono.mean(), mono.std() + NORM_EPS
        with torch.inference_mode():
            out = apply_model(self.model, ((mix - mean) / std)[None], shifts=self.shifts, split=True,
                              overlap=self.segment_overlap, progress=False)[0]
        out = (out * std + mean).numpy()  # [sources, 2, T]
        stems = {s: out[i] for i, s in enumerate(self.sources)}
        vocals = stems.pop(VOCALS)
        accompaniment = np.sum(list(stems.values()), axis=0)
        return {VOCALS: vocals, ACCOMPANIMENT: accompaniment.astype(np.float32), **stems}
