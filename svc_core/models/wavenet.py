"""WaveNet-style gated residual stack (WN) used by the flow coupling layers and the posterior encoder."""
from __future__ import annotations

import torch
from torch import nn

from . import commons
from .weight_norm import weight_norm


class DepthwiseSeparableConv1d(nn.Module):
    """Depthwise conv (k, groups=C_in) then pointwise 1x1 conv; both weight-normed ([B, C_in, T] -> [B, C_out, T])."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        self.depth_conv = weight_norm(nn.Conv1d(in_channels, in_channels, kernel_size, groups=in_channels,
                                                dilation=dilation, padding=padding))
        self.point_conv = weight_norm(nn.Conv1d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class WN(nn.Module):
    """Gated dilated conv stack: x [B, H, T], mask [B, 1, T], g [B, G, T|1] -> skip sum [B, H, T].

    `depthwise=True` swaps each `in_layers.i` for a DepthwiseSeparableConv1d (upstream's use_depthwise_conv).
    """

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, p_dropout: float = 0.0, depthwise: bool = False) -> None:
        super().__init__()
        assert kernel_size % 2 == 1, "WN kernel size must be odd"
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels != 0:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))
        for i in range(n_layers):
            dilation = dilation_rate ** i
            padding = int((kernel_size * dilation - dilation) / 2)
            if depthwise:
                in_layer: nn.Module = DepthwiseSeparableConv1d(hidden_channels, 2 * hidden_channels, kernel_size,
                                                               dilation=dilation, padding=padding)
            else:
                in_layer = weight_norm(nn.Conv1d(hidden_channels, 2 * hidden_channels, kernel_size,
                                                 dilation=dilation, padding=padding))
            self.in_layers.append(in_layer)
            res_skip_channels = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden_channels, res_skip_channels, 1)))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        output = torch.zeros_like(x)
        hidden = self.hidden_channels
        if g is not None:
            g = self.cond_layer(g)
        for i in range(self.n_layers):
            x_in = self.in_layers[i](x)
            if g is not None:
                g_l = g[:, i * 2 * hidden:(i + 1) * 2 * hidden, :]
            else:
                g_l = torch.zeros_like(x_in)
            acts = self.drop(commons.fused_add_tanh_sigmoid_multiply(x_in, g_l, hidden))
            res_skip = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :hidden, :]) * x_mask
                output = output + res_skip[:, hidden:, :]
            else:
                output = output + res_skip
        return output * x_mask
