"""CTC helpers: greedy decoding and phone error rate (Levenshtein distance over phone ids)."""
from __future__ import annotations

from typing import Sequence

import torch


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """logits [B, T, C] (blank = 0), lengths [B] -> per item the ids after merging repeats and removing blanks."""
    best = logits.argmax(dim=-1).cpu()
    out = []
    for row, n in zip(best, lengths.cpu().tolist()):
        ids, prev = [], 0
        for i in row[:n].tolist():
            if i != prev and i != 0:
                ids.append(i)
            prev = i
        out.append(ids)
    return out


def edit_distance(ref: Sequence[int], hyp: Sequence[int]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def phone_error_rate(refs: Sequence[Sequence[int]], hyps: Sequence[Sequence[int]]) -> float:
    """Total edit distance / total reference length, in percent."""
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    total = sum(len(r) for r in refs)
    return 100.0 * errors / max(total, 1)
