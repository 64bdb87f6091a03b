"""The WORLD voice network: content units + f0 + speaker -> coded WORLD frames (svc_core.worldvoice.features).

    units [B, C, T] (stretched to the 512-sample frame grid), f0 [B, T] Hz (interpolated through unvoiced
    frames), uv [B, T] (1 = voiced), speaker: LongTensor [B] ids or float [B, T, n_spk] mix weights
    -> normalised coded frames [B, D, T]; `denormalise` maps them to WORLD's scale with the training statistics.

A stack of dilated residual 1-D convolutions, the speaker added to every block. Small on purpose: it trains on
two CPU cores in an hour and runs far faster than real time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

F0_REF = 440.0  # Hz; log-f0 input is octaves relative to this


@dataclass
class NetParams:
    content_dim: int = 256
    n_speakers: int = 1
    hidden: int = 192
    layers: int = 8
    kernel_size: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4, 1, 2)
    out_dim: int = 65  # SP_DIMS + n_ap at 44.1 kHz
    dropout: float = 0.1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetParams":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "dilations" in known:
            known["dilations"] = tuple(int(x) for x in known["dilations"])
        return cls(**known)


class _Block(nn.Module):
    def __init__(self, hidden: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, hidden)
        self.conv = nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.out = nn.Conv1d(hidden, hidden, 1)
        self.spk = nn.Linear(hidden, 2 * hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """x [B, H, T], g [B, H, T] -> [B, H, T]"""
        h = self.conv(self.norm(x)) + self.spk(g.transpose(1, 2)).transpose(1, 2)
        a, b = h.chunk(2, dim=1)
        return x + self.out(self.drop(torch.tanh(a) * torch.sigmoid(b)))


class WorldVoiceNet(nn.Module):
    def __init__(self, p: NetParams) -> None:
        super().__init__()
        if len(p.dilations) != p.layers:
            raise ValueError(f"{p.layers} layers need {p.layers} dilations, got {len(p.dilations)}")
        self.params = p
        self.content = nn.Conv1d(p.content_dim, p.hidden, 1)
        self.pitch = nn.Conv1d(2, p.hidden, 1)
        self.speaker = nn.Embedding(p.n_speakers, p.hidden)
        self.blocks = nn.ModuleList(_Block(p.hidden, p.kernel_size, d, p.dropout) for d in p.dilations)
        self.head = nn.Sequential(nn.GroupNorm(1, p.hidden), nn.Conv1d(p.hidden, p.hidden, 1), nn.GELU(),
                                  nn.Conv1d(p.hidden, p.out_dim, 1))
        self.register_buffer("mean", torch.zeros(p.out_dim))
        self.register_buffer("std", torch.ones(p.out_dim))

    def speaker_frames(self, speaker: torch.Tensor, n_frames: int) -> torch.Tensor:
        """LongTensor [B] ids or float [B, T, n_spk] weights -> [B, H, T]"""
        if speaker.is_floating_point():
            g = speaker @ self.speaker.weight  # [B, T, H]
            return g.transpose(1, 2)
        return self.speaker(speaker.view(-1))[:, :, None].expand(-1, -1, n_frames)

    def forward(self, units: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        log_f0 = torch.log2(f0.clamp(min=20.0) / F0_REF)
        x = self.content(units) + self.pitch(torch.stack([log_f0, uv.float()], dim=1))
        g = self.speaker_frames(speaker, units.shape[-1])
        x = x + g
        for block in self.blocks:
            x = block(x, g)
        return self.head(x)

    def denormalise(self, y: torch.Tensor) -> torch.Tensor:
        """normalised [B, D, T] -> WORLD-scale coded frames [B, D, T]"""
        return y * self.std[None, :, None] + self.mean[None, :, None]

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def receptive_field(p: NetParams) -> int:
    """Frames of context the network sees on each side."""
    return sum(d * (p.kernel_size - 1) // 2 for d in p.dilations)

