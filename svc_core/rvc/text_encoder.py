"""RVC's prior encoder (`enc_p`): content features (+ coarse pitch) -> prior mean / log-std [B, Z, T]."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..models import commons
from ..models.attentions import Encoder
from .hparams import RvcHParams

REL_WINDOW = 10  # relative-position window of RVC's attention encoder (embeddings have 2*10+1 rows)
PITCH_BINS = 256  # rows of emb_pitch (coarse pitch 1..255)
ENC_SLOPE = 0.1  # leaky ReLU after the embeddings


class RvcTextEncoder(nn.Module):
    """phone [B, T, C] (C = 768 v2 / 256 v1), pitch [B, T] long | None, lengths [B] ->
    (m [B, Z, T'], logs [B, Z, T'], x_mask [B, 1, T']) with T' = T - skip_head."""

    def __init__(self, hp: RvcHParams) -> None:
        super().__init__()
        self.out_channels = hp.inter_channels
        self.hidden_channels = hp.hidden_channels
        self.emb_phone = nn.Linear(hp.content_dim, hp.hidden_channels)
        if hp.f0:
            self.emb_pitch = nn.Embedding(PITCH_BINS, hp.hidden_channels)
        self.encoder = Encoder(hp.hidden_channels, hp.filter_channels, hp.n_heads, hp.n_layers, hp.kernel_size,
                               hp.p_dropout, window_size=REL_WINDOW)
        self.proj = nn.Conv1d(hp.hidden_channels, hp.inter_channels * 2, 1)

    def embed(self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> encoder input LeakyReLU((emb_phone + emb_pitch) * sqrt(H)) [B, H, T] (unmasked), x_mask [B, 1, T]."""
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), ENC_SLOPE).transpose(1, -1)
        x_mask = commons.sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        return x, x_mask

    def forward(self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor,
                skip_head: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, x_mask = self.embed(phone, pitch, lengths)
        x = self.encoder(x * x_mask, x_mask)
        if skip_head:
            x = x[:, :, skip_head:]
            x_mask = x_mask[:, :, skip_head:]
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, x_mask
