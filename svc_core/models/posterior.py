"""Posterior encoder (enc_q): linear spectrogram -> latent z. Training only; inference never runs it."""
from __future__ import annotations

import torch
from torch import nn

from . import commons
from .wavenet import WN

POSTERIOR_KERNEL = 5
POSTERIOR_LAYERS = 16


class PosteriorEncoder(nn.Module):
    """spec [B, F, T] (F = n_fft/2+1), lengths [B] frames, g [B, G, 1|T] -> (z, m, logs [B, Z, T], mask [B, 1, T])."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 kernel_size: int = POSTERIOR_KERNEL, dilation_rate: int = 1, n_layers: int = POSTERIOR_LAYERS,
                 gin_channels: int = 0, depthwise: bool = False) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels,
                      depthwise=depthwise)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_mask = commons.sequence_mask(lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)
        x = self.pre(spec) * x_mask
        x = self.enc(x, x_mask, g=g)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * x_mask
        return z, m, logs, x_mask
