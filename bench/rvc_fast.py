"""Opt-in faster paths for RVC conversions, measured by the bench's `torch-fast` row (bench only: proposals for
svc_core, not used by the engine). Each replaces a computation by the same math done with less work or memory:

- `banded_relative_attention(encoder)`: the prior encoder's relative-position attention (window W = 10) pads its
  2W+1 relative embeddings to 2T-1 rows and multiplies the queries with all of them (and the attention weights,
  skewed to [T, 2T-1], with the padded value table): two [T, 2T-1] products per layer of which all but 2W+1
  columns are zeros. Here the 2W+1 band is computed ([T, 2W+1]) and added on the diagonals, and the queries go
  in blocks of QUERY_BLOCK rows (softmax is per row), so the [T, T] scores are never whole: at T = 4200 (a 42 s
  segment) 2 x 13.5 GFLOP and ~1 GB of temporaries per layer fewer.
- `sdpa_attention(hubert)`: HuBERT's self-attention through torch's scaled_dot_product_attention (a fused,
  memory-bounded kernel) instead of the explicit [H, T, T] scores and softmax (fairseq's way, which RVC runs).
Same numbers up to float summation order (the bench reports the max abs difference to RVC's procedure).
"""
from __future__ import annotations

import math
import types

import torch
import torch.nn.functional as F

from svc_core.models.commons import MASK_FILL  # the masked-score value of the original

QUERY_BLOCK = 512  # query rows per block of the banded attention (scores [B, H, 512, T])


def _band_index(start: int, stop: int, length: int, window: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Key column of every (query row, relative offset) pair [n, 2W+1] (clamped) and whether it exists."""
    rows = torch.arange(start, stop, device=device)[:, None]
    cols = rows + torch.arange(-window, window + 1, device=device)[None, :]
    valid = (cols >= 0) & (cols < length)
    return cols.clamp(0, length - 1), valid


def _banded_attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   mask: torch.Tensor | None) -> torch.Tensor:
    """MultiHeadAttention._attend for self-attention with a relative window: [B, C, T] x3 -> [B, C, T]."""
    b, d, t = key.shape
    heads, dk, window = self.n_heads, self.k_channels, self.window_size
    q = query.view(b, heads, dk, t).transpose(2, 3) / math.sqrt(dk)  # [B, H, T, Dk]
    k = key.view(b, heads, dk, t).transpose(2, 3)
    v = value.view(b, heads, dk, t).transpose(2, 3)
    rel_k, rel_v = self.emb_rel_k[0], self.emb_rel_v[0]  # [2W+1, Dk]
    out = torch.empty_like(q)
    for start in range(0, t, QUERY_BLOCK):
        stop = min(start + QUERY_BLOCK, t)
        qb = q[:, :, start:stop]
        cols, valid = _band_index(start, stop, t, window, q.device)
        shape = (b, heads, stop - start, 2 * window + 1)
        scores = qb @ k.transpose(-2, -1)  # [B, H, n, T]
        band = (qb @ rel_k.transpose(0, 1)) * valid  # [B, H, n, 2W+1]: query i with key i + r - W
        scores.scatter_add_(-1, cols.expand(shape), band)
        if mask is not None:
            scores = scores.masked_fill(mask[..., start:stop, :] == 0, MASK_FILL)
        p = F.softmax(scores, dim=-1)
        ob = p @ v
        ob = ob + (p.gather(-1, cols.expand(shape)) * valid) @ rel_v
        out[:, :, start:stop] = ob
    return out.transpose(2, 3).contiguous().view(b, d, t)


def banded_relative_attention(encoder: torch.nn.Module) -> int:
    """Give every windowed MultiHeadAttention in `encoder` the banded, blocked attention; returns the count."""
    from svc_core.models.attentions import MultiHeadAttention

    count = 0
    for module in encoder.modules():
        if isinstance(module, MultiHeadAttention) and module.window_size is not None:
            module._attend = types.MethodType(_banded_attend, module)
            count += 1
    return count


def _sdpa_forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
    """SelfAttention.forward through scaled_dot_product_attention: x [B, T, D] -> [B, T, D]."""
    b, t, d = x.shape
    head_dim = d // self.heads

    def split(y: torch.Tensor) -> torch.Tensor:
        return y.view(b, t, self.heads, head_dim).transpose(1, 2)

    mask = None if key_padding is None else ~key_padding[:, None, None, :]
    out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)),
                                         attn_mask=mask)
    return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


def sdpa_attention(model: torch.nn.Module) -> int:
    """Route every HuBERT SelfAttention in `model` through scaled_dot_product_attention; returns the count."""
    from svc_core.encoders.hubert_fairseq import SelfAttention

    count = 0
    for module in model.modules():
        if isinstance(module, SelfAttention):
            module.forward = types.MethodType(_sdpa_forward, module)
            count += 1
    return count
