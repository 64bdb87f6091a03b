"""A content encoder that returns upstream's stored units, for end-to-end parity runs whose upstream encoder is not
shipped (a full-size random checkpoint, or upstream's stand-in): it records how far the 16 kHz audio it receives is
from upstream's, so the stages before it are checked too."""
from __future__ import annotations

import numpy as np
import torch

from svc_core.encoders import ContentEncoder


class StoredUnits(ContentEncoder):
    def __init__(self, name: str, dim: int, expected_wav16k: np.ndarray, units: np.ndarray) -> None:
        super().__init__()
        self.name, self.dim = name, dim
        self.expected = torch.from_numpy(expected_wav16k)
        self.units = torch.from_numpy(units)
        self.input_error = None  # max abs difference of the last input from upstream's

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        self.input_error = float((wav[0] - self.expected).abs().max())
        return self.units
