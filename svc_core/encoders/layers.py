"""Small building blocks shared by the HuBERT-family encoders."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormConv1d(nn.Module):
    """Conv1d whose weight is stored as weight_g * weight_v / ||weight_v|| (the old torch weight_norm keys).

    The norm is taken per kernel tap (weight_norm dim=2): weight_g is [1, 1, K], weight_v is [C_out, C_in/groups, K].
    Keeping the parameters under their original names lets checkpoints load with strict key checking.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int, padding: int) -> None:
        super().__init__()
        self.groups = groups
        self.padding = padding
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        if self.weight_v.device.type != "meta":
            nn.init.normal_(self.weight_v, std=(4.0 / (kernel_size * channels)) ** 0.5)

    def weight(self) -> torch.Tensor:
        """The effective kernel [C_out, C_in/groups, K]."""
        norm = torch.linalg.vector_norm(self.weight_v, dim=(0, 1), keepdim=True)
        return self.weight_v * (self.weight_g / norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T] -> [B, C, T + 2*padding - K + 1]."""
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


def trim_same_pad(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Drop the extra trailing frame an even kernel with padding K//2 produces ([B, C, T+1] -> [B, C, T])."""
    return x[:, :, :-1] if kernel_size % 2 == 0 else x


class PositionalConv(nn.Module):
    """Convolutional relative position embedding: grouped weight-normed conv -> same-pad trim -> erf GELU."""

    def __init__(self, dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = WeightNormConv1d(dim, kernel_size, groups, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, D] -> positional term [B, T, D] (to be added to x by the caller)."""
        y = self.conv(x.transpose(1, 2))
        return F.gelu(trim_same_pad(y, self.kernel_size)).transpose(1, 2)


class Transpose12(nn.Module):
    """[B, C, T] <-> [B, T, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class Fp32GroupNorm(nn.GroupNorm):
    """GroupNorm evaluated in float32 whatever the input dtype (as fairseq does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps)
        return y.type_as(x)


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm evaluated in float32 whatever the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.type_as(x)
