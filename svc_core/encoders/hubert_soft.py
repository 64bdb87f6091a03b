"""bshall's HuBERT-Soft (`hubert-soft-0d54a1f4.pt`): soft speech units [1, 256, T] for the 'hubertsoft' encoder.

Parameter names follow bshall/hubert's HubertSoft exactly (flat state dict, optionally prefixed 'module.'):
feature_extractor.conv{0..6} / norm0, feature_projection.{norm,projection}, positional_embedding.conv
(weight-normed, weight_g [1, 1, 128]), norm, encoder.layers.{i} (torch TransformerEncoderLayer: post-LN,
erf GELU, batch-first), proj (768 -> 256), plus the training-only masked_spec_embed and label_embedding.
Sizes are read from the file's tensor shapes; attention uses 64-dim heads (12 heads at 768) as bshall does.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..safe_load import load_torch
from .base import ContentEncoder
from .contentvec import FAIRSEQ_INERT_CLASSES
from .layers import PositionalConv

SOFT_CONV_STACK = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))  # (kernel, stride) per conv
SOFT_PAD = 40  # samples of zeros added on each side: (receptive field 400 - hop 320) / 2
SOFT_HEAD_DIM = 64
SOFT_POS_GROUPS = 16
SOFT_MIN_SAMPLES = 320  # with the padding, one hop of audio yields one frame: T = floor(N / 320)
MODULE_PREFIX = "module."


@dataclasses.dataclass(frozen=True)
class SoftArch:
    """Sizes of a HuBERT-Soft model (bshall defaults)."""

    conv_dim: int = 512
    dim: int = 768
    ffn_dim: int = 3072
    layers: int = 12
    pos_kernel: int = 128
    unit_dim: int = 256
    num_labels: int = 100
    attention_heads: int | None = None  # None: dim / 64 (12 at 768), as bshall's model uses

    @property
    def heads(self) -> int:
        return self.attention_heads or max(1, self.dim // SOFT_HEAD_DIM)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "SoftArch":
        """Read the sizes from tensor shapes (keys without the 'module.' prefix)."""
        try:
            layer_ids = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
            return cls(
                conv_dim=state["feature_extractor.conv0.weight"].shape[0],
                dim=state["feature_projection.projection.weight"].shape[0],
                ffn_dim=state["encoder.layers.0.linear1.weight"].shape[0],
                layers=max(layer_ids) + 1,
                pos_kernel=state["positional_embedding.conv.weight_g"].shape[-1],
                unit_dim=state["proj.weight"].shape[0],
                num_labels=state["label_embedding.weight"].shape[0] if "label_embedding.weight" in state else 100,
            )
        except (KeyError, ValueError, IndexError, AttributeError) as err:
            raise ModelError(f"This is not a hubert-soft state dict (missing or malformed {err}).") from None


class SoftFeatureExtractor(nn.Module):
    """Seven bias-free strided convs, GroupNorm after the first, GELU after each: [B, 1, N] -> [B, C, T]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        in_ch = 1
        for i, (kernel, stride) in enumerate(SOFT_CONV_STACK):
            self.add_module(f"conv{i}", nn.Conv1d(in_ch, channels, kernel, stride, bias=False))
            in_ch = channels
        self.norm0 = nn.GroupNorm(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm0(self.conv0(x)))
        for i in range(1, len(SOFT_CONV_STACK)):
            x = F.gelu(getattr(self, f"conv{i}")(x))
        return x


class SoftFeatureProjection(nn.Module):
    """LayerNorm(C_conv) then Linear(C_conv -> D): [B, T, C_conv] -> [B, T, D]."""

    def __init__(self, conv_dim: int, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(conv_dim)
        self.projection = nn.Linear(conv_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.norm(x))


class SoftEncoder(nn.Module):
    """Stack of post-LN transformer layers (keys encoder.layers.{i}.*)."""

    def __init__(self, arch: SoftArch) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(arch.dim, arch.heads, arch.ffn_dim, dropout=0.1, activation="gelu",
                                       batch_first=True)
            for _ in range(arch.layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class HubertSoft(nn.Module):
    """HuBERT-Soft: wav [B, N] at 16 kHz -> soft units [B, T, unit_dim], T = floor(N / 320)."""

    def __init__(self, arch: SoftArch | None = None) -> None:
        super().__init__()
        arch = arch or SoftArch()
        self.arch = arch
        self.feature_extractor = SoftFeatureExtractor(arch.conv_dim)
        self.feature_projection = SoftFeatureProjection(arch.conv_dim, arch.dim)
        self.positional_embedding = PositionalConv(arch.dim, arch.pos_kernel, SOFT_POS_GROUPS)
        self.norm = nn.LayerNorm(arch.dim)
        self.encoder = SoftEncoder(arch)
        self.proj = nn.Linear(arch.dim, arch.unit_dim)
        # Training-only parameters, present in the file and kept for strict loading.
        self.masked_spec_embed = nn.Parameter(torch.zeros(arch.dim))
        self.label_embedding = nn.Embedding(arch.num_labels, arch.unit_dim)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, N] -> last transformer layer output [B, T, dim] (zero-pads 40 samples each side first)."""
        x = F.pad(wav, (SOFT_PAD, SOFT_PAD)).unsqueeze(1)
        x = self.feature_projection(self.feature_extractor(x).transpose(1, 2))
        x = self.norm(x + self.positional_embedding(x))
        return self.encoder(x)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, N] -> soft units [B, T, unit_dim], T = floor(N / 320)."""
        return self.proj(self.encode(wav))


def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the 'module.' prefix DataParallel training adds (keys without it pass unchanged)."""
    return {k[len(MODULE_PREFIX):] if k.startswith(MODULE_PREFIX) else k: v for k, v in state.items()}


def load_hubert_soft(path: str | os.PathLike) -> HubertSoft:
    """Read a hubert-soft state dict safely (strict keys and shapes) and return the model in eval mode."""
    path = os.fspath(path)
    name = os.path.basename(path)
    # The fairseq stand-ins only let a mistakenly chosen ContentVec file be recognised and named below.
    raw = load_torch(path, what="hubert-soft checkpoint", inert=FAIRSEQ_INERT_CLASSES)
    if isinstance(raw, Mapping) and isinstance(raw.get("model"), Mapping):
        raise ModelError(
            f"'{name}' is a fairseq HuBERT/ContentVec checkpoint, not hubert-soft; select a vec* encoder "
            "(e.g. vec768l12 or vec256l9) for it."
        )
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ModelError(
            f"'{name}' is not a hubert-soft state dict (expected a flat mapping of tensors). "
            "If it is a ContentVec/fairseq checkpoint, select a vec* encoder instead."
        )
    state = strip_module_prefix(raw)
    model = HubertSoft(SoftArch.from_state_dict(state))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"'{name}' does not have the hubert-soft layout: missing {missing[:3]}, unexpected {unexpected[:3]}."
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ModelError(
                f"'{name}': tensor '{key}' has shape {list(value.shape)}, expected {list(expected[key].shape)}."
            )
    model.load_state_dict(state, strict=True)
    return model.eval()


class HubertSoftEncoder(ContentEncoder):
    """The 'hubertsoft' encoder: [1, 256, floor(N / 320)] soft units."""

    min_samples = SOFT_MIN_SAMPLES

    def __init__(self, path: str, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.name = "hubertsoft"
        self.path = path
        self.model = load_hubert_soft(path)
        self.dim = self.model.arch.unit_dim
        self.to(device)

    def to(self, device: str | torch.device) -> "HubertSoftEncoder":
        self.model.to(device)
        self.device = torch.device(device)
        return self

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model(wav).transpose(1, 2).float()
