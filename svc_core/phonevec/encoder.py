"""phonevec's two content encoders, behind the ContentEncoder contract (one checkpoint, two taps):

    enc = get_encoder("phonevec256", "pretrain/phonevec256.pt")
    feats = enc.encode(wav16k)      # [1, 256, N // 320] float32, 50 frames/s: a hidden layer
    enc = get_encoder("phoneppg42", "pretrain/phonevec256.pt")
    ppg = enc.encode(wav16k)        # [1, 42, N // 320]: the phonetic posteriorgram (PhoneVec.posteriors)

phonevec256 is the layer-normalised output of transformer block `config.feature_layer` (see `model.py`); it
carries content and some speaker colour. phoneppg42 is the CTC head's posteriorgram: content with little speaker
information (docs/training.md, "Our own content encoders", gives the probe numbers for both).
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
PPG_NAME = "phoneppg42"  # same weights file, posteriorgram tap
PPG_DIM = 42  # CTC classes: blank + 41 phones


class PhoneVecEncoder(ContentEncoder):
    """phonevec features of one checkpoint; frame count T = N // 320 for N input samples.

    tap "hidden": layer `layer` (default: the checkpoint's feature_layer); tap "ppg": the posteriorgram."""

    min_samples = HOP

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", name: str = NAME,
                 layer: int | None = None, tap: str = "hidden") -> None:
        super().__init__()
        if tap not in ("hidden", "ppg"):
            raise ValueError(f"tap must be 'hidden' or 'ppg', got {tap!r}")
        self.name = name
        self.tap = tap
        self.path = os.fspath(path)
        model = load_encoder(self.path)
        self.layer = model.cfg.feature_layer if layer is None else layer
        if not 0 <= self.layer <= model.cfg.n_layers:
            raise ModelError(f"'{os.path.basename(self.path)}' has {model.cfg.n_layers} layers; layer {self.layer} "
                             "does not exist.")
        self.dim = model.cfg.n_classes if tap == "ppg" else model.cfg.dim
        wanted = {NAME: DIM, PPG_NAME: PPG_DIM}.get(name)
        if wanted is not None and self.dim != wanted:
            raise ModelError(f"'{os.path.basename(self.path)}' gives {self.dim}-dim features; {name} needs {wanted}.")
        self.model: PhoneVec = model
        self.to(device)

    def to(self, device: str | torch.device) -> "PhoneVecEncoder":
        self.device = torch.device(device)
        self.model = self.model.to(self.device)
        return self

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [1, N] -> [1, dim, N // 320]."""
        if self.tap == "ppg":
            return self.model.posteriors(wav).float()
        return self.model.features(wav, self.layer).float()
