"""Random training crops as RVC's commons does them (rand_slice_segments / slice_segments2)."""
from __future__ import annotations

import torch


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """x [B, C, T] or [B, T], starts [B] frames -> the crops [B, C, size] / [B, size]."""
    return torch.stack([x[i, ..., int(s):int(s) + size] for i, s in enumerate(starts)])


def rand_slice_segments(x: torch.Tensor, lengths: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, C, T], lengths [B] -> (random crops [B, C, size], start frames [B] long), drawn with torch.rand
    from the global RNG like RVC: start = floor(U[0,1) * (length - size + 1))."""
    if int(lengths.min()) < size:
        raise ValueError(f"an item has {int(lengths.min())} frames, fewer than the {size}-frame training crop")
    upper = lengths - size + 1
    starts = (torch.rand([x.size(0)]).to(device=x.device) * upper).to(dtype=torch.long)
    return slice_segments(x, starts, size), starts
