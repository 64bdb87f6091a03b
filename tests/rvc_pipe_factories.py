"""Content-feature seams for the RVC pipeline tests (tests/rvc/test_recipe*.py, test_e2e_parity.py).

The parity fixtures' content features come from a small random HuBERT (64-d layers, 32-d final_proj) followed by
a fixed affine adapter to RVC's widths (parity README section 3): v2 `(layer12 - c12) @ W12` [.., 768], v1
`(final_proj(layer9) - cfp) @ Wfp` [.., 256]. `AdaptedContentVec` runs that with our fairseq-free HuBERT on any
audio; `StoredFeatures` hands out features recorded by the fixture generator, one segment after another.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from svc_core.encoders.base import ContentEncoder
from svc_core.encoders.contentvec import ContentVecEncoder

TAPS = {"v2": ("vec768l12", 768, 12, False, "c12", "W12"), "v1": ("vec256l9", 256, 9, True, "cfp", "Wfp")}


def hubert_checkpoint(shared_dir: Path) -> Path:
    return shared_dir / "compat" / "parity" / "contentvec" / "hubert_small_dev" / "checkpoint.pt"


def adapter(parity_dir: Path, version: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(offset [D], matrix [D, C]) of the fixtures' adapter for `version`."""
    data = np.load(parity_dir / "rvc" / "hubert_adapter.npz")
    _, _, _, _, offset, matrix = TAPS[version]
    return torch.from_numpy(data[offset]), torch.from_numpy(data[matrix])


def apply_adapter(hidden: torch.Tensor, offset: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """[1, n, D] -> [1, n, C] as the fixture generator did it (subtract, then torch.matmul)."""
    return torch.matmul(hidden - offset, matrix)


class AdaptedContentVec(ContentEncoder):
    """Our HuBERT on the fixtures' small checkpoint + the adapter, named like RVC's encoder for `version`."""

    def __init__(self, shared_dir: Path, version: str = "v2") -> None:
        super().__init__()
        name, dim, layer, final_proj, _, _ = TAPS[version]
        self.name, self.dim = name, dim
        self.inner = ContentVecEncoder(name, str(hubert_checkpoint(shared_dir)), layer, final_proj)
        self.model = self.inner.model
        self.min_samples = self.inner.min_samples
        self.offset, self.matrix = adapter(shared_dir / "compat" / "parity", version)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        hidden = self.inner._encode(wav).transpose(1, 2)  # [1, n, D]
        return apply_adapter(hidden, self.offset, self.matrix).transpose(1, 2)


class StoredFeatures(ContentEncoder):
    """Hands out recorded features [1, n, C] in order, one per encode() call; checks the frame count a real
    encoder would give for the segment (n = (N - 400) // 320 + 1)."""

    def __init__(self, name: str, dim: int, features: Sequence[np.ndarray]) -> None:
        super().__init__()
        self.name, self.dim, self.min_samples = name, dim, 400
        self.features = [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in features]
        self.used = 0

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        feats = self.features[self.used]
        expected = (wav.shape[-1] - 400) // 320 + 1
        assert feats.shape[1] == expected, f"segment {self.used}: {feats.shape[1]} stored frames, {expected} due"
        self.used += 1
        return feats.transpose(1, 2)
