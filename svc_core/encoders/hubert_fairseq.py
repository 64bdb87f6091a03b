"""A fairseq-free HuBERT / ContentVec forward pass with fairseq's parameter names (strict-loadable).

Pipeline for wav [B, N] at 16 kHz (C_conv = conv channels, D = encoder_embed_dim, T = frames at 50 Hz):
  conv stack -> [B, C_conv, T] -> LayerNorm(C_conv) -> post_extract_proj -> [B, T, D]
  -> + pos_conv(x) -> (post-LN only) encoder.layer_norm -> pad T to required_seq_len_multiple (pad keys masked)
  -> transformer layers 1..L -> drop pad -> (pre-LN and all layers: encoder.layer_norm) -> [B, T, D]
`output_layer` is 1-based: it stops after that layer, and then no final LayerNorm is applied (as fairseq).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..models.attentions import fast_inference
from .conv_extractor import ConvFeatureExtractor
from .hubert_config import HubertArch
from .layers import WeightNormConv1d, trim_same_pad


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v/out projections (fairseq MultiheadAttention keys)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        """x: [B, T, D]; key_padding: bool [B, T], True = padded key (ignored). Returns [B, T, D]."""
        b, t, d = x.shape
        head_dim = d // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, head_dim).transpose(1, 2)

        if fast_inference() and x.dtype == torch.float32:  # fused kernel, no [B, H, T, T] matrix: same numbers (4e-8)
            mask = None if key_padding is None else ~key_padding[:, None, None, :]
            out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)),
                                                 attn_mask=mask)
            return self.out_proj(out.transpose(1, 2).reshape(b, t, d))
        q = split(self.q_proj(x)) * (head_dim**-0.5)
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        scores = q @ k.transpose(-1, -2)  # [B, H, T, T]
        if key_padding is not None:
            scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(out)


class EncoderLayer(nn.Module):
    """One transformer layer (fairseq TransformerSentenceEncoderLayer): attention + erf-GELU feed-forward."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, layer_norm_first: bool) -> None:
        super().__init__()
        self.layer_norm_first = layer_norm_first
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        """x: [B, T, D] -> [B, T, D]."""
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_padding)
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, key_padding))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    """Positional conv + stack of EncoderLayer (keys `encoder.pos_conv.0.*`, `encoder.layers.{i}.*`)."""

    def __init__(self, arch: HubertArch) -> None:
        super().__init__()
        dim = arch.encoder_embed_dim
        self.layer_norm_first = arch.layer_norm_first
        self.seq_multiple = max(1, arch.required_seq_len_multiple)
        # fairseq's pos_conv is Sequential(conv, SamePad, GELU); only index 0 has parameters.
        self.pos_kernel = arch.conv_pos
        self.pos_conv = nn.ModuleList(
            [WeightNormConv1d(dim, arch.conv_pos, arch.conv_pos_groups, padding=arch.conv_pos // 2)]
        )
        self.layers = nn.ModuleList(
            EncoderLayer(dim, arch.encoder_ffn_embed_dim, arch.encoder_attention_heads, arch.layer_norm_first)
            for _ in range(arch.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, output_layer: int | None = None, record: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """x: [B, T, D] projected features -> [B, T, D] output of layer `output_layer` (1-based; None = all)."""
        pos = F.gelu(trim_same_pad(self.pos_conv[0](x.transpose(1, 2)), self.pos_kernel)).transpose(1, 2)
        if record is not None:
            record["pos_conv_out"] = pos
        x = x + pos
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        if record is not None:
            record["layer_0"] = x
        frames = x.shape[1]
        pad = (-frames) % self.seq_multiple
        key_padding = None
        if record is not None:
            record["layer_0_pad_frames"] = torch.tensor(pad)
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
            key_padding = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
            key_padding[:, frames:] = True
        last = len(self.layers) if output_layer is None else output_layer
        for i, layer in enumerate(self.layers[:last], start=1):
            x = layer(x, key_padding)
            if record is not None:
                record[f"layer_{i}"] = x[:, :frames]
        x = x[:, :frames]
        if self.layer_norm_first and output_layer is None:
            x = self.layer_norm(x)
        return x


class HubertModel(nn.Module):
    """HuBERT / ContentVec feature model with the exact state-dict layout of fairseq's HubertModel."""

    def __init__(self, arch: HubertArch) -> None:
        super().__init__()
        self.arch = arch.validate()
        conv_layers = arch.conv_layers
        dim = arch.encoder_embed_dim
        self.feature_extractor = ConvFeatureExtractor(conv_layers, arch.extractor_mode, arch.conv_bias)
        self.layer_norm = nn.LayerNorm(arch.conv_dim)
        self.post_extract_proj = nn.Linear(arch.conv_dim, dim) if arch.conv_dim != dim else None
        self.encoder = TransformerEncoder(arch)
        self.final_proj = nn.Linear(dim, arch.proj_dim)
        # Training-only parameters kept so checkpoints load strictly; they never touch the forward pass.
        self.mask_emb = nn.Parameter(torch.zeros(dim))
        self.label_embs_concat = nn.Parameter(torch.zeros(arch.num_labels, arch.label_dim))
        self.has_final_proj = True  # False when a checkpoint omits final_proj (then vec256 taps are refused)
        self.hop_length = math.prod(stride for _, _, stride in conv_layers)

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    def extract_features(
        self, wav: torch.Tensor, output_layer: int | None = None, record: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """wav: [B, N] float at 16 kHz -> [B, T, D], T = floor((N - receptive_field) / hop) + 1.

        `output_layer` (1-based) stops after that transformer layer; `record`, when given, receives the
        intermediates conv_layer_i [B, C_conv, T_i], features_ln [B, T, C_conv], features_proj, pos_conv_out,
        layer_0..layer_L [B, T, D].
        """
        if output_layer is not None and not 1 <= output_layer <= self.num_layers:
            raise ModelError(f"output_layer must be between 1 and {self.num_layers}, got {output_layer}.")
        x = self.feature_extractor(wav, record)
        if record is not None:
            record["conv_out"] = x
        x = self.layer_norm(x.transpose(1, 2))
        if record is not None:
            record["features_ln"] = x
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        if record is not None:
            record["features_proj"] = x
        return self.encoder(x, output_layer, record)
