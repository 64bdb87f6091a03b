"""ContentVec / HuBERT encoders (vec768l12, vec256l9, vec768l9, vec256l12) over one cached fairseq-free model.

All four names read the same fairseq checkpoint (ContentVec legacy `checkpoint_best_legacy_500.pt`, or RVC's
`hubert_base.pt`); they differ only in which transformer layer is tapped and whether `final_proj` follows.
Loaded models are cached per (file, device), so several names over one file load it once.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Mapping

import torch

from ..errors import ModelError
from ..safe_load import load_torch
from .base import ContentEncoder
from .hubert_config import HubertArch, model_fields
from .hubert_fairseq import HubertModel

FAIRSEQ_INERT_CLASSES = ("fairseq.data.dictionary.Dictionary", "argparse.Namespace")
OPTIONAL_KEYS = ("label_embs_concat", "mask_emb", "final_proj.weight", "final_proj.bias")
CONTENTVEC_RECEPTIVE_FIELD = 400  # samples: shortest input giving one frame with the standard conv stack

_CACHE: dict[tuple[Any, ...], HubertModel] = {}
_CACHE_LOCK = threading.Lock()


def _check_state_dict(model: HubertModel, state: Mapping[str, Any], name: str) -> None:
    """Strict key/shape comparison; only training-only tensors (and final_proj) may be absent."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and k not in OPTIONAL_KEYS]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
        raise ModelError(
            f"'{name}' does not match the HuBERT architecture its own config describes: {'; '.join(parts)}."
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"'{name}': entry '{key}' of the state dict is not a tensor.")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ModelError(
                f"'{name}': tensor '{key}' has shape {list(value.shape)}, but the config implies "
                f"{list(expected[key].shape)}."
            )


def load_hubert_checkpoint(path: str | os.PathLike) -> HubertModel:
    """Read a fairseq HuBERT/ContentVec checkpoint safely and return the model on the CPU in eval mode."""
    path = os.fspath(path)
    name = os.path.basename(path)
    checkpoint = load_torch(path, what="ContentVec/HuBERT checkpoint", inert=FAIRSEQ_INERT_CLASSES)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("model"), Mapping):
        raise ModelError(
            f"'{name}' is not a fairseq HuBERT/ContentVec checkpoint (no 'model' state dict inside). "
            "If it is bshall's hubert-soft file, select the 'hubertsoft' encoder instead."
        )
    state = dict(checkpoint["model"])
    overrides: dict[str, Any] = {}
    labels = state.get("label_embs_concat")
    if isinstance(labels, torch.Tensor) and labels.dim() == 2:
        overrides["num_labels"] = labels.shape[0]
    arch = HubertArch.from_fields(model_fields(checkpoint), **overrides)
    model = HubertModel(arch)
    _check_state_dict(model, state, name)
    model.load_state_dict(state, strict=False)
    model.has_final_proj = "final_proj.weight" in state
    return model.eval()


def shared_hubert(path: str | os.PathLike, device: str | torch.device = "cpu") -> HubertModel:
    """The cached model for `path` on `device` (loaded on first use; reloaded if the file changed)."""
    real = os.path.realpath(os.fspath(path))
    stat = os.stat(real)
    device = torch.device(device)
    key = (real, stat.st_mtime_ns, stat.st_size, str(device))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            stale = [k for k in _CACHE if k[0] == real and k[1:3] != key[1:3]]
            for k in stale:
                del _CACHE[k]
            cpu_key = key[:3] + ("cpu",)
            model = _CACHE.get(cpu_key)
            if model is None:
                model = load_hubert_checkpoint(real)
            _CACHE[cpu_key] = model
            if device.type != "cpu":
                has_proj = model.has_final_proj
                model = _copy_to(model, device)
                model.has_final_proj = has_proj
                _CACHE[key] = model
        return model


def _copy_to(model: HubertModel, device: torch.device) -> HubertModel:
    clone = HubertModel(model.arch).to(device)
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def clear_cache() -> None:
    """Forget every cached HuBERT model (frees their memory once no encoder holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


class ContentVecEncoder(ContentEncoder):
    """One tap of a HuBERT model: output of transformer `layer` (1-based), optionally through final_proj."""

    min_samples = CONTENTVEC_RECEPTIVE_FIELD

    def __init__(self, name: str, path: str, layer: int, final_proj: bool, device: str | torch.device = "cpu"):
        super().__init__()
        self.name = name
        self.path = path
        self.layer = layer
        self.use_final_proj = final_proj
        self.model = self._load(torch.device(device))
        self.device = torch.device(device)

    def _load(self, device: torch.device) -> HubertModel:
        model = shared_hubert(self.path, device)
        if self.layer > model.num_layers:
            raise ModelError(
                f"The {self.name} encoder taps transformer layer {self.layer}, but "
                f"'{os.path.basename(self.path)}' has only {model.num_layers} layers."
            )
        if self.use_final_proj and not model.has_final_proj:
            raise ModelError(
                f"The {self.name} encoder needs the checkpoint's final_proj, which "
                f"'{os.path.basename(self.path)}' does not contain."
            )
        self.dim = model.final_proj.out_features if self.use_final_proj else model.arch.encoder_embed_dim
        self.min_samples = _receptive_field(model.arch)
        return model

    def to(self, device: str | torch.device) -> "ContentVecEncoder":
        self.model = self._load(torch.device(device))
        self.device = torch.device(device)
        return self

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [1, N] -> [1, C, T] with T = floor((N - 400) / 320) + 1 for the standard conv stack."""
        x = self.model.extract_features(wav, output_layer=self.layer)
        if self.use_final_proj:
            x = self.model.final_proj(x)
        return x.transpose(1, 2).float()


def _receptive_field(arch: HubertArch) -> int:
    """Samples one output frame of the conv stack sees (400 for (10,5),(3,2)x4,(2,2)x2)."""
    field, jump = 1, 1
    for _, kernel, stride in arch.conv_layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field
