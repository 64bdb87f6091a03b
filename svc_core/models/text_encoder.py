"""Prior encoder (enc_p): content + coarse pitch -> prior mean / log-std and a sampled z_p."""
from __future__ import annotations

import torch
from torch import nn

from . import commons
from .attentions import Encoder


class TextEncoder(nn.Module):
    """x [B, H, T] (+ f0_emb(coarse f0 [B, T])) -> relative-position encoder -> (z_p, m_p, logs_p) [B, Z, T]."""

    def __init__(self, out_channels: int, hidden_channels: int, kernel_size: int, n_layers: int,
                 filter_channels: int, n_heads: int, p_dropout: float) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)
        self.f0_emb = nn.Embedding(commons.F0_BINS, hidden_channels)
        self.enc_ = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, coarse_f0: torch.Tensor,
                noise_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns z_p = (m + N(0,1) * exp(logs) * noise_scale) * mask, m_p, logs_p; draws one randn_like(m)."""
        x = x + self.f0_emb(coarse_f0).transpose(1, 2)
        x = self.enc_(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs) * noise_scale) * x_mask
        return z, m, logs
