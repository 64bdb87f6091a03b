"""Relative-position self-attention for inference, in query blocks: the same numbers in memory linear in length.

The text encoders of so-vits-svc and RVC attend over a whole piece (every frame to every frame) and add learned
relative-position terms for offsets within +-window (10 frames). Written as upstream writes it, the relative terms
go through [B, H, T, 2T-1] tensors that are zero beyond the window, so one 44 s RVC segment (4400 frames) needs over
1 GB in the attention alone. Here the relative terms are computed only on the band they touch (2 * window + 1
diagonals) and the queries are processed in blocks, so the largest tensor is [B, H, block, T]: the result equals
the full computation up to float rounding (the sums are the same; only the order of the matrix products differs).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .commons import MASK_FILL

QUERY_BLOCK = 512  # query frames per block: [B, H, 512, T] scores (a 4400-frame segment: 18 MB per head pair)


def _band(window: int, start: int, rows: int, length: int):
    """(offset index o, diagonal offset k, first row r0) for the 2W+1 relative offsets of query rows
    [start, start + rows): key j = i + o - W, i.e. the k-th diagonal of the block's [rows, length] scores."""
    for o in range(2 * window + 1):
        k = start + o - window
        if k >= length or k <= -rows:
            continue
        yield o, k, max(0, -k)


def banded_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, emb_k: torch.Tensor,
                     emb_v: torch.Tensor, window: int, mask: torch.Tensor | None = None,
                     block: int = QUERY_BLOCK) -> torch.Tensor:
    """query/key/value [B, H, T, D] (query already scaled by 1/sqrt(D)); emb_k/emb_v [1, 2W+1, D] relative tables;
    mask broadcastable to [B, H, T, T] (0 = masked) -> output [B, H, T, D] (softmax attention plus the relative
    value term), as MultiHeadAttention computes it without dropout."""
    length = key.size(2)
    out = torch.empty_like(query)
    table_k = emb_k[0].transpose(0, 1)  # [D, 2W+1]
    table_v = emb_v[0]  # [2W+1, D]
    for start in range(0, query.size(2), block):
        q = query[:, :, start:start + block]
        rows = q.size(2)
        scores = torch.matmul(q, key.transpose(-2, -1))  # [B, H, rows, T]
        rel = torch.matmul(q, table_k)  # [B, H, rows, 2W+1]
        for o, k, r0 in _band(window, start, rows, length):
            diag = torch.diagonal(scores, offset=k, dim1=-2, dim2=-1)
            diag += rel[:, :, r0:r0 + diag.size(-1), o]
        if mask is not None:
            rows_mask = mask[..., start:start + rows, :] if mask.size(-2) > 1 else mask
            scores = scores.masked_fill(rows_mask == 0, MASK_FILL)
        p_attn = F.softmax(scores, dim=-1)
        out_block = torch.matmul(p_attn, value)
        band = p_attn.new_zeros(p_attn.shape[:-1] + (2 * window + 1,))
        for o, k, r0 in _band(window, start, rows, length):
            diag = torch.diagonal(p_attn, offset=k, dim1=-2, dim2=-1)
            band[:, :, r0:r0 + diag.size(-1), o] = diag
        out[:, :, start:start + rows] = out_block + torch.matmul(band, table_v)
    return out


__all__ = ["QUERY_BLOCK", "banded_attention"]
