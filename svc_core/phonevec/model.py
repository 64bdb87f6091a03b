"""The phonevec network: log-mel -> conv subsampling to 50 frames/s -> pre-norm transformer blocks -> CTC phones.

    model = PhoneVec(PhoneVecConfig())
    logits, lengths = model(wav [B, N], n_samples [B])       # [B, T, n_classes], T = N // 320
    feats = model.features(wav [1, N], layer=4)               # [1, dim, N // 320], layer-normalised
    ppg = model.posteriors(wav [1, N])                        # [1, n_classes, N // 320], see `posteriors`

Shapes: audio at 16 kHz; log-mel at 100 frames/s (hop 160); two 1-D convolutions (the second with stride 2) map
it to `dim` channels at 50 frames/s; frame t covers samples [320 t, 320 t + 320) plus context. Every block is
pre-norm: x += MHSA(LN x); x += DepthwiseConv(LN x) (the only position information, relative); x += FF(LN x).
`hidden` layer 0 is the conv front end, layer k the output of block k. The CTC head reads LN(last layer).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .features import LogMel, MelSettings
from .text import PHONE_SET

HOP = 320  # samples per output frame at 16 kHz (50 frames/s)


@dataclass(frozen=True)
class PhoneVecConfig:
    """Architecture (stored in the checkpoint's "config"); `feature_layer` is the tap `encode()` uses."""

    dim: int = 256
    n_layers: int = 6
    n_heads: int = 4
    ff_dim: int = 512
    conv_kernel: int = 7
    dropout: float = 0.1
    n_classes: int = len(PHONE_SET)
    feature_layer: int = 5
    mel: MelSettings = field(default_factory=MelSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PhoneVecConfig":
        """Inverse of to_dict; unknown keys are an error (a newer or foreign file)."""
        data = dict(data)
        mel = MelSettings(**data.pop("mel", {}))
        return cls(mel=mel, **data)


class Block(nn.Module):
    """One pre-norm block: self-attention, depthwise temporal convolution, feed-forward; [B, T, D] -> same."""

    def __init__(self, cfg: PhoneVecConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.norm_attn = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.norm_conv = nn.LayerNorm(d)
        self.conv = nn.Conv1d(d, d, cfg.conv_kernel, padding=cfg.conv_kernel // 2, groups=d)
        self.norm_ff = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_dim), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.ff_dim, d))
        self.drop = nn.Dropout(cfg.dropout)

    def attention(self, h: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        """Self-attention with `attn`'s weights (nn.MultiheadAttention's parameter layout), written with
        shape-agnostic ops so it exports to ONNX with a dynamic T: [B, T, D] -> [B, T, D]."""
        a = self.attn
        q, k, v = F.linear(h, a.in_proj_weight, a.in_proj_bias).chunk(3, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, H, T, D / H]
            return t.unflatten(-1, (a.num_heads, -1)).transpose(1, 2)

        mask = None if pad_mask is None else ~pad_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=mask,
                                             dropout_p=a.dropout if self.training else 0.0)
        return a.out_proj(out.transpose(1, 2).flatten(2))

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.drop(self.attention(self.norm_attn(x), pad_mask))
        h = self.norm_conv(x)
        if pad_mask is not None:
            h = h.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        x = x + self.drop(F.gelu(self.conv(h.transpose(1, 2)).transpose(1, 2)))
        return x + self.drop(self.ff(self.norm_ff(x)))


class PhoneVec(nn.Module):
    """Audio [B, N] at 16 kHz -> per-layer hidden states [B, T, dim] and CTC logits [B, T, n_classes]."""

    def __init__(self, cfg: PhoneVecConfig = PhoneVecConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.logmel = LogMel(cfg.mel)
        self.register_buffer("mel_mean", torch.zeros(cfg.mel.n_mels))  # set from training data
        self.register_buffer("mel_std", torch.ones(cfg.mel.n_mels))
        self.front = nn.Sequential(
            nn.Conv1d(cfg.mel.n_mels, cfg.dim, 3, padding=1), nn.GELU(),
            nn.Conv1d(cfg.dim, cfg.dim, 3, stride=2, padding=1), nn.GELU(),
        )
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm_out = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.n_classes)

    @staticmethod
    def n_frames(n_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Output frames for n_samples of 16 kHz audio: n_samples // 320."""
        return n_samples // HOP

    def normalized_mel(self, wav: torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        """[B, N] -> standardised log-mel [B, n_mels, N // 160 + 1]."""
        mel = self.logmel(wav, warp)
        return (mel - self.mel_mean[:, None]) / self.mel_std[:, None]

    def hidden(self, wav: torch.Tensor, n_samples: torch.Tensor | None = None, upto: int | None = None,
               warp: float = 1.0) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Hidden states [front, block 1, ..., block upto] each [B, T, dim], and frame lengths [B]."""
        batch, n = wav.shape
        if n_samples is None:
            n_samples = torch.full((batch,), n, dtype=torch.long, device=wav.device)
        t_max = n // HOP
        x = self.front(self.normalized_mel(wav, warp))[:, :, :t_max].transpose(1, 2)
        lengths = torch.clamp(n_samples // HOP, min=1, max=t_max)
        pad_mask = None
        if bool((lengths < t_max).any()):
            pad_mask = torch.arange(t_max, device=wav.device)[None, :] >= lengths[:, None]
        states = [x]
        upto = self.cfg.n_layers if upto is None else upto
        for block in self.blocks[:upto]:
            x = block(x, pad_mask)
            states.append(x)
        return states, lengths

    def forward(self, wav: torch.Tensor, n_samples: torch.Tensor | None = None,
                warp: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """CTC logits [B, T, n_classes], lengths [B] and all hidden states."""
        states, lengths = self.hidden(wav, n_samples, warp=warp)
        return self.head(self.norm_out(states[-1])), lengths, states

    def features(self, wav: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Content features of the tapped layer: [B, N] -> [B, dim, N // 320], layer-normalised (no affine)."""
        layer = self.cfg.feature_layer if layer is None else layer
        if not 0 <= layer <= self.cfg.n_layers:
            raise ValueError(f"layer must be in 0..{self.cfg.n_layers}, got {layer}")
        states, _ = self.hidden(wav, upto=layer)
        return F.layer_norm(states[layer], (self.cfg.dim,)).transpose(1, 2)

    def posteriors(self, wav: torch.Tensor) -> torch.Tensor:
        """Phonetic posteriorgram [B, N] -> [B, n_classes, N // 320]: channel 0 is P(blank), channels 1.. are
        P(phone | not blank), so every frame names a phone distribution (CTC's own posteriors are blank almost
        everywhere) while the CTC decision stays recoverable (P(phone) = (1 - P(blank)) x channel)."""
        logits, _, _ = self(wav)
        blank = torch.sigmoid(logits[..., 0] - torch.logsumexp(logits[..., 1:], dim=-1))  # = softmax(logits)[0]
        phones = torch.softmax(logits[..., 1:], dim=-1)
        return torch.cat([blank.unsqueeze(-1), phones], dim=-1).transpose(1, 2)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
