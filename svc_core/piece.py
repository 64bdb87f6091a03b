"""`PieceFeatures`: the synthesizer's per-frame inputs for one piece, between `Svc.piece_features` and
`Svc.synthesize_piece` (the live engine keeps these of past blocks instead of computing them again)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PieceFeatures:
    """wav: float32 [N] at the model rate (N = T * hop for whole-hop pieces); f0, uv: [1, T] (f0 in Hz after the
    transpose, uv 1 = voiced); c: content [C, T] stretched onto the f0 grid, cluster/index mix applied."""

    wav: np.ndarray
    f0: torch.Tensor
    uv: torch.Tensor
    c: torch.Tensor

    @property
    def n_frames(self) -> int:
        return int(self.f0.shape[1])

    def last(self, frames: int, hop: int) -> "PieceFeatures":
        """The last `frames` frames (and their frames * hop samples)."""
        frames = min(frames, self.n_frames)
        return PieceFeatures(wav=self.wav[len(self.wav) - frames * hop:], f0=self.f0[:, -frames:],
                             uv=self.uv[:, -frames:], c=self.c[:, -frames:])

    def then(self, newer: "PieceFeatures") -> "PieceFeatures":
        """These frames followed by `newer`'s (same hop, same content width)."""
        return PieceFeatures(wav=np.concatenate([self.wav, newer.wav]), f0=torch.cat([self.f0, newer.f0], 1),
                             uv=torch.cat([self.uv, newer.uv], 1), c=torch.cat([self.c, newer.c], 1))
