"""Normalising flows between the prior latent z_p and the decoder latent z ([B, Z, T])."""
from __future__ import annotations

import torch
from torch import nn

from .attentions import FFT
from .wavenet import WN

FLOW_KERNEL = 5  # kernel size of every coupling layer's WN / FFN
N_RESIDUAL_FLOWS = 4  # coupling layers in the default residual flow


class Flip(nn.Module):
    """Reverse the channel order (its own inverse; log-determinant 0)."""

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = torch.flip(x, [1])
        if reverse:
            return x
        return x, torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class _MeanCoupling(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by enc(first half)."""

    def __init__(self, channels: int, hidden_channels: int, enc: nn.Module) -> None:
        super().__init__()
        assert channels % 2 == 0, "flow channels must be even"
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = enc
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g=g)
        m = self.post(h) * x_mask
        if reverse:
            x1 = (x1 - m) * x_mask
            return torch.cat([x0, x1], 1)
        x1 = m + x1 * x_mask
        return torch.cat([x0, x1], 1), torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class ResidualCouplingLayer(_MeanCoupling):
    """Coupling layer whose shift network is a WN (or the block's shared WN)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, shared: WN | None = None, depthwise: bool = False) -> None:
        enc = shared if shared is not None else WN(hidden_channels, kernel_size, dilation_rate, n_layers,
                                                   gin_channels=gin_channels, depthwise=depthwise)
        super().__init__(channels, hidden_channels, enc)


class TransformerCouplingLayer(_MeanCoupling):
    """Coupling layer whose shift network is a speaker-gated causal FFT stack (VITS2-style)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, n_layers: int, n_heads: int,
                 p_dropout: float, filter_channels: int, gin_channels: int = 0, shared: FFT | None = None) -> None:
        enc = shared if shared is not None else FFT(hidden_channels, filter_channels, n_heads, n_layers,
                                                    kernel_size, p_dropout, isflow=True, gin_channels=gin_channels)
        super().__init__(channels, hidden_channels, enc)


class _FlowStack(nn.Module):
    """[Coupling, Flip] x n; parameters sit at even indices of `flows` as in upstream state dicts."""

    flows: nn.ModuleList

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        """x [B, Z, T] -> [B, Z, T]; reverse=True maps prior z_p to decoder z (inference)."""
        if reverse:
            for flow in reversed(self.flows):
                x = flow(x, x_mask, g=g, reverse=True)
        else:
            for flow in self.flows:
                x, _ = flow(x, x_mask, g=g, reverse=False)
        return x


class ResidualCouplingBlock(_FlowStack):
    """Default so-vits flow: 4 mean-only WN couplings; `n_layers` is each WN's depth (config n_flow_layer)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 n_flows: int = N_RESIDUAL_FLOWS, gin_channels: int = 0, share_parameter: bool = False,
                 depthwise: bool = False) -> None:
        super().__init__()
        self.wn = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels,
                     depthwise=depthwise) if share_parameter else None
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                                                    gin_channels=gin_channels, shared=self.wn, depthwise=depthwise))
            self.flows.append(Flip())


class TransformerCouplingBlock(_FlowStack):
    """Transformer flow: `n_flows` (config n_flow_layer) FFT couplings of `n_layers` (n_layers_trans_flow) each."""

    def __init__(self, channels: int, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, p_dropout: float, n_flows: int = 4, gin_channels: int = 0,
                 share_parameter: bool = False) -> None:
        super().__init__()
        self.wn = FFT(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout, isflow=True,
                      gin_channels=gin_channels) if share_parameter else None
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(TransformerCouplingLayer(channels, hidden_channels, kernel_size, n_layers, n_heads,
                                                       p_dropout, filter_channels, gin_channels=gin_channels,
                                                       shared=self.wn))
            self.flows.append(Flip())
