"""Transformer stacks over channel-first sequences [B, C, T].

* `Encoder`: VITS relative-position self-attention encoder (enc_p); "same"-padded FFN.
* `FFT`: causal stack (lower-triangular attention mask, left-padded FFN) used by the f0 decoder and,
  with `isflow=True` (speaker-gated input per layer), by the transformer flow.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from . import commons
from .banded_attention import banded_attention
from .weight_norm import weight_norm

REL_WINDOW = 4  # relative-position window of enc_p's attention (embeddings have 2*4+1 rows)


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T], parameters `gamma` / `beta` [C]."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, -1)
        x = F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with 1x1-conv projections; optional shared relative-position embeddings.

    forward(x [B, C, Tq], c [B, C, Tk], attn_mask [B or 1, 1, Tq, Tk]) -> [B, out_channels, Tq].
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0,
                 window_size: int | None = None, proximal_init: bool = False) -> None:
        super().__init__()
        assert channels % n_heads == 0, "channels must be divisible by n_heads"
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window_size is not None:
            std = self.k_channels ** -0.5
            rows = 2 * window_size + 1
            self.emb_rel_k = nn.Parameter(torch.randn(1, rows, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, rows, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)
        if proximal_init:
            with torch.no_grad():
                self.conv_k.weight.copy_(self.conv_q.weight)
                self.conv_k.bias.copy_(self.conv_q.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self._attend(self.conv_q(x), self.conv_k(c), self.conv_v(c), attn_mask)
        return self.conv_o(out)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        b, d, t_s = key.shape
        t_t = query.size(2)
        query = query.view(b, self.n_heads, self.k_channels, t_t).transpose(2, 3)
        key = key.view(b, self.n_heads, self.k_channels, t_s).transpose(2, 3)
        value = value.view(b, self.n_heads, self.k_channels, t_s).transpose(2, 3)

        scaled_query = query / math.sqrt(self.k_channels)
        if self.window_size is not None and t_s == t_t and fast_inference():  # same numbers, memory linear in T
            out = banded_attention(scaled_query, key, value, self.emb_rel_k, self.emb_rel_v, self.window_size, mask)
            return out.transpose(2, 3).contiguous().view(b, d, t_t)
        scores = torch.matmul(scaled_query, key.transpose(-2, -1))
        if self.window_size is not None:
            assert t_s == t_t, "relative attention is only for self-attention"
            rel_k = self._relative_embeddings(self.emb_rel_k, t_s)
            rel_logits = torch.matmul(scaled_query, rel_k.unsqueeze(0).transpose(-2, -1))
            scores = scores + _relative_to_absolute(rel_logits)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, commons.MASK_FILL)
        p_attn = self.drop(F.softmax(scores, dim=-1))
        output = torch.matmul(p_attn, value)
        if self.window_size is not None:
            rel_v = self._relative_embeddings(self.emb_rel_v, t_s)
            output = output + torch.matmul(_absolute_to_relative(p_attn), rel_v.unsqueeze(0))
        return output.transpose(2, 3).contiguous().view(b, d, t_t)

    def _relative_embeddings(self, table: torch.Tensor, length: int) -> torch.Tensor:
        """[1, 2W+1, D] -> [1, 2*length-1, D] (zero-padded beyond the window)."""
        window = self.window_size
        pad = max(length - (window + 1), 0)
        start = max((window + 1) - length, 0)
        if pad > 0:
            table = F.pad(table, [0, 0, pad, pad, 0, 0])
        return table[:, start:start + 2 * length - 1]


_WHOLE_MATRIX = [False]  # set by whole_matrix_attention()


@contextmanager
def whole_matrix_attention() -> Iterator[None]:
    """Inference in upstream's whole-matrix form (its memory and speed): for baselines that measure upstream's
    procedure (bench/)."""
    previous = _WHOLE_MATRIX[0]
    _WHOLE_MATRIX[0] = True
    try:
        yield
    finally:
        _WHOLE_MATRIX[0] = previous


def fast_inference() -> bool:
    """Whether attention may take its inference forms (banded relative terms here, fused attention in the content
    encoders): no gradients and no graph capture (ONNX export / tracing keep the whole-matrix form, whose shapes are
    symbolic in T), unless whole_matrix_attention() asks for upstream's form."""
    return not (_WHOLE_MATRIX[0] or torch.is_grad_enabled() or torch.onnx.is_in_onnx_export()
                or torch.jit.is_tracing())


def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
    """[B, H, L, 2L-1] relative logits -> [B, H, L, L] absolute."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, [0, 1, 0, 0, 0, 0, 0, 0])
    flat = x.view(batch, heads, length * 2 * length)
    flat = F.pad(flat, [0, length - 1, 0, 0, 0, 0])
    return flat.view(batch, heads, length + 1, 2 * length - 1)[:, :, :length, length - 1:]


def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
    """[B, H, L, L] absolute weights -> [B, H, L, 2L-1] relative."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, [0, length - 1, 0, 0, 0, 0, 0, 0])
    flat = x.view(batch, heads, length * length + length * (length - 1))
    flat = F.pad(flat, [length, 0, 0, 0, 0, 0])
    return flat.view(batch, heads, length, 2 * length)[:, :, :, 1:]


class FFN(nn.Module):
    """conv(k) -> ReLU -> conv(k) over [B, C, T], masked; causal=True pads only on the left."""

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int,
                 p_dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.causal = causal
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        k = self.kernel_size
        left, right = (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2)
        return F.pad(x, [left, right, 0, 0, 0, 0])

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        x = self.drop(x)
        x = self.conv_2(self._pad(x * x_mask))
        return x * x_mask


class Encoder(nn.Module):
    """Relative-position transformer encoder: [B, H, T] -> [B, H, T] (enc_p.enc_)."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int = 1, p_dropout: float = 0.0, window_size: int = REL_WINDOW) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(MultiHeadAttention(hidden_channels, hidden_channels, n_heads,
                                                       p_dropout=p_dropout, window_size=window_size))
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size,
                                       p_dropout=p_dropout))
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for i in range(self.n_layers):
            y = self.drop(self.attn_layers[i](x, x, attn_mask))
            x = self.norm_layers_1[i](x + y)
            y = self.drop(self.ffn_layers[i](x, x_mask))
            x = self.norm_layers_2[i](x + y)
        return x * x_mask


class FFT(nn.Module):
    """Causal transformer stack [B, H, T] -> [B, H, T]; with isflow, each layer's input is gated by g [B, G, T|1]."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int = 1,
                 kernel_size: int = 1, p_dropout: float = 0.0, isflow: bool = False, gin_channels: int = 0) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        if isflow:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))
            self.cond_pre = nn.Conv1d(hidden_channels, 2 * hidden_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        self.self_attn_layers = nn.ModuleList()
        self.norm_layers_0 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        for _ in range(n_layers):
            self.self_attn_layers.append(MultiHeadAttention(hidden_channels, hidden_channels, n_heads,
                                                            p_dropout=p_dropout, proximal_init=True))
            self.norm_layers_0.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size,
                                       p_dropout=p_dropout, causal=True))
            self.norm_layers_1.append(LayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if g is not None:
            g = self.cond_layer(g)
        causal = commons.subsequent_mask(x_mask.size(2)).to(device=x.device, dtype=x.dtype)
        x = x * x_mask
        width = 2 * self.hidden_channels
        for i in range(self.n_layers):
            if g is not None:
                x = self.cond_pre(x)
                x = commons.fused_add_tanh_sigmoid_multiply(x, g[:, i * width:(i + 1) * width, :],
                                                            self.hidden_channels)
            y = self.drop(self.self_attn_layers[i](x, x, causal))
            x = self.norm_layers_0[i](x + y)
            y = self.drop(self.ffn_layers[i](x, x_mask))
            x = self.norm_layers_1[i](x + y)
        return x * x_mask
