"""Automatic pitch predictor (f0_decoder): content features + speaker -> normalised log-f0."""
from __future__ import annotations

import torch
from torch import nn

from .attentions import FFT


class F0Decoder(nn.Module):
    """x [B, H, T], norm_lf0 [B, 1, T], mask [B, 1, T], spk_emb [B, G, T|1] -> predicted lf0 [B, 1, T]."""

    def __init__(self, out_channels: int, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, p_dropout: float, spk_channels: int = 0) -> None:
        super().__init__()
        self.prenet = nn.Conv1d(hidden_channels, hidden_channels, 3, padding=1)
        self.decoder = FFT(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels, 1)
        self.f0_prenet = nn.Conv1d(1, hidden_channels, 3, padding=1)
        self.cond = nn.Conv1d(spk_channels, hidden_channels, 1)

    def forward(self, x: torch.Tensor, norm_lf0: torch.Tensor, x_mask: torch.Tensor,
                spk_emb: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.detach(x)
        if spk_emb is not None:
            x = x + self.cond(spk_emb)
        x = x + self.f0_prenet(norm_lf0)
        x = self.prenet(x) * x_mask
        x = self.decoder(x * x_mask, x_mask)
        return self.proj(x) * x_mask
