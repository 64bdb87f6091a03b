"""BS-RoFormer and Mel-Band RoFormer networks, written here with the parameter layout of the checkpoints that
Music-Source-Separation-Training (MSST) and UVR / audio-separator users download (`.ckpt`: a bare state dict).

Why our own: the `bs-roformer` package on PyPI has moved on (1.x: other layers and names) and pulls beartype and
rotary-embedding-torch; audio-separator pins torch/onnx versions we cannot take. The maths here is the published
architecture; the module names only mirror the checkpoints' keys so that `load_state_dict` is strict.

Shapes: audio [B, S, T] (S channels) -> STFT [B, S, F, N] complex -> per band features [B, N, bands, dim] ->
`depth` blocks of (time transformer over N, frequency transformer over bands) -> per stem a complex mask over
the STFT bins -> iSTFT -> [B, stems, S, T].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

ROTARY_THETA = 10000.0  # base of the rotary position frequencies


@dataclass
class RoformerConfig:
    """The `model:` section of an MSST config (only the fields inference needs). kind: "bs" or "mel"."""

    kind: str
    dim: int
    depth: int
    stereo: bool = True
    num_stems: int = 1
    time_transformer_depth: int = 1
    freq_transformer_depth: int = 1
    freqs_per_bands: tuple[int, ...] = ()  # bs: STFT bins per band, summing to stft_n_fft // 2 + 1
    num_bands: int = 60  # mel: mel bands (overlapping)
    sample_rate: int = 44100  # mel: for the mel filter bank, Hz
    dim_head: int = 64
    heads: int = 8
    stft_n_fft: int = 2048
    stft_hop_length: int = 441  # samples
    stft_win_length: int = 2048
    stft_normalized: bool = False
    zero_dc: bool = True
    mask_estimator_depth: int = 2
    mlp_expansion_factor: int = 4
    skip_connection: bool = False
    gates: bool = True  # per-head output gates (to_gates): newer checkpoints have them
    unsupported: list[str] = field(default_factory=list)


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class Rotary(nn.Module):
    """Rotary position embedding on interleaved pairs of the head dimension; `freqs` [dim_head / 2]."""

    def __init__(self, dim_head: int) -> None:
        super().__init__()
        freqs = 1.0 / ROTARY_THETA ** (torch.arange(0, dim_head, 2)[: dim_head // 2].float() / dim_head)
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., n, d] -> rotated by position along n."""
        pos = torch.arange(x.shape[-2], device=x.device, dtype=self.freqs.dtype)
        angles = torch.repeat_interleave(pos[:, None] * self.freqs, 2, dim=-1).to(x.dtype)  # [n, d]
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * angles.cos() + rotated * angles.sin()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, rotary: Rotary, gates: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_gates = nn.Linear(dim, heads) if gates else None
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim, bias=False))
        self.rotary_embed = rotary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, n, dim] -> [B, n, dim]."""
        x = self.norm(x)
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # each [B, h, n, d]
        out = F.scaled_dot_product_attention(self.rotary_embed(q), self.rotary_embed(k), v)
        if self.to_gates is not None:
            out = out * self.to_gates(x).transpose(1, 2)[..., None].sigmoid()
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(RMSNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(dim * mult, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Transformer(nn.Module):
    def __init__(self, cfg: RoformerConfig, depth: int, rotary: Rotary, norm_output: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(cfg.dim, cfg.heads, cfg.dim_head, rotary, cfg.gates), FeedForward(cfg.dim)])
            for _ in range(depth))
        self.norm = RMSNorm(cfg.dim) if norm_output else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


class BandSplit(nn.Module):
    """[B, N, sum(widths)] -> [B, N, bands, dim]: each band's (complex x channel) bins through norm + linear."""

    def __init__(self, dim: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.widths = widths
        self.to_features = nn.ModuleList(nn.Sequential(RMSNorm(w), nn.Linear(w, dim)) for w in widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([f(part) for part, f in zip(x.split(self.widths, dim=-1), self.to_features)], dim=-2)


def _mlp(dim_in: int, dim_out: int, hidden: int, layers: int) -> nn.Sequential:
    dims = (dim_in, *([hidden] * (layers - 1)), dim_out)
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        modules.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            modules.append(nn.Tanh())
    return nn.Sequential(*modules)


class MaskEstimator(nn.Module):
    """[B, N, bands, dim] -> [B, N, sum(widths)]: per band an MLP then GLU."""

    def __init__(self, dim: int, widths: tuple[int, ...], linear_layers: int, expansion: int) -> None:
        super().__init__()
        self.to_freqs = nn.ModuleList(
            nn.Sequential(_mlp(dim, 2 * w, dim * expansion, linear_layers), nn.GLU(dim=-1)) for w in widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([f(band) for band, f in zip(x.unbind(dim=-2), self.to_freqs)], dim=-1)


def mel_band_bins(cfg: RoformerConfig) -> torch.Tensor:
    """bool [bands, F]: which STFT bins each mel band covers (librosa's slaney filters > 0, ends forced in)."""
    import librosa

    bank = torch.from_numpy(librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.stft_n_fft, n_mels=cfg.num_bands))
    bank[0, 0] = 1.0
    bank[-1, -1] = 1.0
    return bank > 0


class Roformer(nn.Module):
    """BS-RoFormer (cfg.kind "bs") or Mel-Band RoFormer ("mel"). forward: audio [B, S, T] -> [B, stems, S, T]."""

    def __init__(self, cfg: RoformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels = 2 if cfg.stereo else 1
        bins = cfg.stft_n_fft // 2 + 1
        if cfg.kind == "bs":
            if sum(cfg.freqs_per_bands) != bins:
                raise ValueError(f"freqs_per_bands sum to {sum(cfg.freqs_per_bands)}, the STFT has {bins} bins")
            per_band = list(cfg.freqs_per_bands)
            index = torch.arange(bins * self.channels)
            self.register_buffer("bands_per_bin", torch.ones(bins * self.channels), persistent=False)
        else:
            covered = mel_band_bins(cfg)
            if not covered.any(dim=0).all():
                raise ValueError("the mel bands leave some STFT bins uncovered")
            per_band = covered.sum(dim=1).tolist()
            freq = torch.arange(bins).expand(cfg.num_bands, bins)[covered]
            index = (freq[:, None] * self.channels + torch.arange(self.channels)).flatten()
            self.register_buffer("bands_per_bin", covered.sum(dim=0).repeat_interleave(self.channels).float(),
                                 persistent=False)
        self.register_buffer("bin_index", index, persistent=False)  # [band bins], into the (freq, channel) axis
        widths = tuple(2 * n * self.channels for n in per_band)
        mel = cfg.kind == "mel"
        time_rotary, freq_rotary = Rotary(cfg.dim_head), Rotary(cfg.dim_head)
        self.layers = nn.ModuleList(
            nn.ModuleList([Transformer(cfg, cfg.time_transformer_depth, time_rotary, norm_output=mel),
                           Transformer(cfg, cfg.freq_transformer_depth, freq_rotary, norm_output=mel)])
            for _ in range(cfg.depth))
        self.final_norm = None if mel else RMSNorm(cfg.dim)
        self.band_split = BandSplit(cfg.dim, widths)
        layers = cfg.mask_estimator_depth + (1 if mel else 0)  # MSST's mel MLP has one more linear layer
        self.mask_estimators = nn.ModuleList(
            MaskEstimator(cfg.dim, widths, layers, cfg.mlp_expansion_factor) for _ in range(cfg.num_stems))
        self.register_buffer("window", torch.hann_window(cfg.stft_win_length), persistent=False)

    def _stft_args(self) -> dict:
        c = self.cfg
        return dict(n_fft=c.stft_n_fft, hop_length=c.stft_hop_length, win_length=c.stft_win_length,
                    normalized=c.stft_normalized, window=self.window)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        b, s, t = audio.shape
        spec = torch.stft(audio.reshape(b * s, t), return_complex=True, **self._stft_args())  # [B*S, F, N]
        spec = spec.view(b, s, *spec.shape[1:]).permute(0, 2, 1, 3).reshape(b, -1, spec.shape[-1])  # [B, F*S, N]
        picked = torch.view_as_real(spec[:, self.bin_index])  # [B, band bins, N, 2]
        x = self.band_split(picked.permute(0, 2, 1, 3).flatten(2))  # [B, N, bands, dim]
        kept: list[torch.Tensor] = []
        for time_tf, freq_tf in self.layers:
            if self.cfg.skip_connection:
                for earlier in kept:
                    x = x + earlier
            n, k = x.shape[1], x.shape[2]
            x = time_tf(x.transpose(1, 2).reshape(b * k, n, -1)).view(b, k, n, -1).transpose(1, 2)
            x = freq_tf(x.reshape(b * n, k, -1)).view(b, n, k, -1)
            if self.cfg.skip_connection:
                kept.append(x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        outs = []
        for estimator in self.mask_estimators:
            mask = torch.view_as_complex(estimator(x).unflatten(-1, (-1, 2)).transpose(1, 2).contiguous())
            full = torch.zeros_like(spec).index_add_(1, self.bin_index, mask) / self.bands_per_bin[:, None]
            masked = (spec * full).view(b, -1, s, spec.shape[-1]).transpose(1, 2).reshape(b * s, -1, spec.shape[-1])
            if self.cfg.zero_dc:
                masked[:, 0] = 0
            outs.append(torch.istft(masked, length=t, **self._stft_args()).view(b, s, t))
        return torch.stack(outs, dim=1)


def build_roformer(cfg: RoformerConfig, device: Optional[str] = None) -> Roformer:
    with torch.device(device or "cpu"):
        return Roformer(cfg)
