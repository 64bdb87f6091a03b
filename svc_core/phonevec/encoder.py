"""`phonevec256`: the content encoder trained in this repo, behind the ContentEncoder contract.

    enc = get_encoder("phonevec256", "pretrain/phonevec256.pt")
    feats = enc.encode(wav16k)      # [1, 256, N // 320] float32, 50 frames/s

Features are the layer-normalised output of transformer block `config.feature_layer` (see `model.py`).
"""
from __future__ import annotations

import os

import torch

from ..encoders.base import ContentEncoder
from ..errors import ModelError
from .checkpoint import load_encoder
from .model import HOP, PhoneVec

NAME = "phonevec256"  # registered in svc_core/encoders/registry.py with default file phonevec256.pt
DIM = 256


class PhoneVecEncoder(ContentEncoder):
    """phonevec features of one checkpoint; frame count T = N // 320 for N input samples."""

    min_samples = HOP

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", name: str = NAME,
                 layer: int | None = None) -> None:
        super().__init__()
        self.name = name
        self.path = os.fspath(path)
        model = load_encoder(self.path)
        self.layer = model.cfg.feature_layer if layer is None else layer
        if not 0 <= self.layer <= model.cfg.n_layers:
            raise ModelError(f"'{os.path.basename(self.path)}' has {model.cfg.n_layers} layers; layer {self.layer} "
                             "does not exist.")
        self.dim = model.cfg.dim
        if name == NAME and self.dim != DIM:
            raise ModelError(f"'{os.path.basename(self.path)}' gives {self.dim}-dim features; {NAME} needs {DIM}.")
        self.model: PhoneVec = model
        self.to(device)

    def to(self, device: str | torch.device) -> "PhoneVecEncoder":
        self.device = torch.device(device)
        self.model = self.model.to(self.device)
        return self

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [1, N] -> [1, dim, N // 320]."""
        return self.model.features(wav, self.layer).float()
