"""Where the engine gets its random numbers: one seam, so a test can feed recorded draws.

Every random tensor the diffusion stage, the NSF-HiFiGAN mel vocoder and the RVC synthesizer use is drawn through
a `NoiseSource`, in upstream's order. `TorchNoise` draws from a torch.Generator (or the global RNG, as upstream does);
`RecordedNoise` hands out stored arrays in order and checks their shapes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch


class NoiseSource:
    """Draws float32 tensors: `randn` (standard normal) and `rand` (uniform [0, 1))."""

    def randn(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        raise NotImplementedError

    def rand(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        raise NotImplementedError


class TorchNoise(NoiseSource):
    """torch's RNG: `generator`, or the global RNG when None (upstream's behaviour)."""

    def __init__(self, generator: Optional[torch.Generator] = None) -> None:
        self.generator = generator

    @classmethod
    def seeded(cls, seed: int) -> "TorchNoise":
        return cls(torch.Generator().manual_seed(int(seed)))

    def randn(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.generator).to(device)

    def rand(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.rand(tuple(shape), generator=self.generator).to(device)


class RecordedNoise(NoiseSource):
    """Stored draws handed out in order (whatever the kind); a draw of another shape, or one too many, is an error."""

    def __init__(self, draws: Sequence[np.ndarray | torch.Tensor]) -> None:
        self.draws = [torch.as_tensor(np.asarray(d), dtype=torch.float32) for d in draws]
        self.used = 0

    def _next(self, shape: Sequence[int], device: torch.device | str) -> torch.Tensor:
        if self.used >= len(self.draws):
            raise RuntimeError(f"RecordedNoise: draw {self.used + 1} requested, only {len(self.draws)} recorded")
        draw = self.draws[self.used]
        if tuple(draw.shape) != tuple(shape):
            draw_shape = tuple(draw.shape)
            if int(np.prod(draw_shape)) != int(np.prod(tuple(shape))):
                raise RuntimeError(f"RecordedNoise: draw {self.used + 1} has shape {draw_shape}, "
                                   f"requested {tuple(shape)}")
            draw = draw.reshape(tuple(shape))
        self.used += 1
        return draw.to(device)

    def randn(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        return self._next(shape, device)

    def rand(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        return self._next(shape, device)

    @property
    def exhausted(self) -> bool:
        return self.used == len(self.draws)
