"""The noise-predicting WaveNet of so-vits-svc 4.1's diffusion model (Diff-SVC / DiffSinger denoiser).

State-dict names are upstream's (`input_projection`, `mlp.0`, `mlp.2`, `residual_layers.<i>.{dilated_conv,
diffusion_projection,conditioner_projection,output_projection}`, `skip_projection`, `output_projection`), and the
arithmetic follows upstream's order so a loaded model gives the same numbers.

Shapes: x [B, 1, M, T] (normalised mel, M = in_dims mel bins, T frames), t [B] diffusion step (int64, or float32
for the DPM-Solver / UniPC samplers), cond [B, H, T] (H = n_hidden, the Unit2Mel condition).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

STEP_EMBED_MAX_PERIOD = 10000.0  # sinusoidal step embedding: frequencies exp(-i ln(10000) / (C/2 - 1))
MLP_EXPANSION = 4  # the step MLP's hidden width is 4 x n_chans

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x [B,1,M,T], t [B]) -> eps [B,1,M,T]


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps t [B] -> [B, dim] = cat(sin(t f), cos(t f))."""
    half = dim // 2
    scale = math.log(STEP_EMBED_MAX_PERIOD) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device) * -scale)
    arg = t[:, None] * freqs[None, :]
    return torch.cat((arg.sin(), arg.cos()), dim=-1)


class ResidualLayer(nn.Module):
    """One gated residual layer: x [B, C, T], cond [B, H, T] (or its projection), step [B, C] ->
    ((x + residual) / sqrt(2), skip), both [B, C, T]."""

    def __init__(self, n_hidden: int, n_chans: int) -> None:
        super().__init__()
        self.n_chans = n_chans
        self.dilated_conv = nn.Conv1d(n_chans, 2 * n_chans, kernel_size=3, padding=1, dilation=1)
        self.diffusion_projection = nn.Linear(n_chans, n_chans)
        self.conditioner_projection = nn.Conv1d(n_hidden, 2 * n_chans, 1)
        self.output_projection = nn.Conv1d(n_chans, 2 * n_chans, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, step: torch.Tensor,
                projected: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`projected` = conditioner_projection(cond) [B, 2C, T] when precomputed (then `cond` is unused)."""
        step = self.diffusion_projection(step).unsqueeze(-1)
        if projected is None:
            projected = self.conditioner_projection(cond)
        y = self.dilated_conv(x + step) + projected
        gate, filt = torch.split(y, [self.n_chans, self.n_chans], dim=1)
        y = self.output_projection(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = torch.split(y, [self.n_chans, self.n_chans], dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class WaveNet(nn.Module):
    """Denoiser eps(x_t, t, cond). in_dims mel bins, n_layers residual layers of n_chans channels, cond width
    n_hidden."""

    def __init__(self, in_dims: int = 128, n_layers: int = 20, n_chans: int = 384, n_hidden: int = 256) -> None:
        super().__init__()
        self.in_dims = in_dims
        self.n_chans = n_chans
        self.n_hidden = n_hidden
        self.input_projection = nn.Conv1d(in_dims, n_chans, 1)
        self.mlp = nn.Sequential(nn.Linear(n_chans, n_chans * MLP_EXPANSION), nn.Mish(),
                                 nn.Linear(n_chans * MLP_EXPANSION, n_chans))
        self.residual_layers = nn.ModuleList([ResidualLayer(n_hidden, n_chans) for _ in range(n_layers)])
        self.skip_projection = nn.Conv1d(n_chans, n_chans, 1)
        self.output_projection = nn.Conv1d(n_chans, in_dims, 1)
        for conv in (self.input_projection, self.skip_projection, self.output_projection):
            nn.init.kaiming_normal_(conv.weight)  # upstream's init (matters for training from scratch only)
        nn.init.zeros_(self.output_projection.weight)

    @property
    def n_layers(self) -> int:
        return len(self.residual_layers)

    def project_condition(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's conditioner projection of cond [B, H, T] -> n_layers x [B, 2C, T] (independent of x, t)."""
        return [layer.conditioner_projection(cond) for layer in self.residual_layers]

    def _run(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None,
             projected: list[torch.Tensor] | None) -> torch.Tensor:
        if t.dim() == 0:  # one step for the whole batch
            t = t.reshape(1).expand(x.shape[0])
        h = F.relu(self.input_projection(x.squeeze(1)))
        step = self.mlp(step_embedding(t, self.n_chans))
        skips = []
        for i, layer in enumerate(self.residual_layers):
            h, skip = layer(h, cond, step, None if projected is None else projected[i])
            skips.append(skip)
        h = torch.sum(torch.stack(skips), dim=0) / math.sqrt(len(self.residual_layers))
        h = F.relu(self.skip_projection(h))
        return self.output_projection(h)[:, None, :, :]

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x [B, 1, M, T], t [B] (int64 or float32 steps), cond [B, H, T] -> predicted noise [B, 1, M, T]."""
        return self._run(x, t, cond, None)

    def cached(self, cond: torch.Tensor) -> EpsFn:
        """eps_fn(x, t) for one sampling run on cond [B, H, T]: the per-layer conditioner projections are computed
        once here instead of at every step (same numbers as forward)."""
        projected = self.project_condition(cond)

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self._run(x, t, None, projected)

        return eps_fn
