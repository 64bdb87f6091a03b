"""fairseq's wave-to-frame convolution stack (ConvFeatureExtractionModel), parameter names preserved.

Block i is Sequential(Conv1d, dropout slot, [norm], GELU), so the keys are `conv_layers.{i}.0.weight`
(+ `.0.bias` with conv_bias), the GroupNorm of block 0 at `conv_layers.0.2.*` ("default" mode) or a
LayerNorm at `conv_layers.{i}.2.1.*` on every block ("layer_norm" mode).
"""
from __future__ import annotations

import torch
from torch import nn

from .conv_spec import ConvLayerSpec
from .layers import Fp32GroupNorm, Fp32LayerNorm, Transpose12


def _block(in_ch: int, spec: ConvLayerSpec, norm: nn.Module | None, bias: bool) -> nn.Sequential:
    out_ch, kernel, stride = spec
    parts: list[nn.Module] = [nn.Conv1d(in_ch, out_ch, kernel, stride=stride, bias=bias), nn.Identity()]
    if norm is not None:
        parts.append(norm)
    parts.append(nn.GELU())
    return nn.Sequential(*parts)


class ConvFeatureExtractor(nn.Module):
    """Strided 1-D convs: waveform [B, N] -> features [B, C_conv, T] (T = frames at the product of strides)."""

    def __init__(self, layers: list[ConvLayerSpec], mode: str = "default", conv_bias: bool = False) -> None:
        super().__init__()
        blocks = []
        in_ch = 1
        for i, spec in enumerate(layers):
            out_ch = spec[0]
            if mode == "layer_norm":
                norm: nn.Module | None = nn.Sequential(Transpose12(), Fp32LayerNorm(out_ch), Transpose12())
            elif i == 0:
                norm = Fp32GroupNorm(out_ch, out_ch, affine=True)
            else:
                norm = None
            blocks.append(_block(in_ch, spec, norm, conv_bias))
            in_ch = out_ch
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, wav: torch.Tensor, record: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """wav: [B, N] float at 16 kHz -> [B, C_conv, T]; `record` receives conv_layer_{i} outputs."""
        x = wav.unsqueeze(1)
        for i, block in enumerate(self.conv_layers):
            x = block(x)
            if record is not None:
                record[f"conv_layer_{i}"] = x
        return x
