"""MultiPeriodDiscriminator of so-vits-svc 4.x / VITS training (spec j), with upstream's state-dict key names.

Module tree (D_*.pth "model" keys): `discriminators.0` = DiscriminatorS (1 -> 16 -> 64 -> 256 -> 1024 -> 1024
-> 1024 grouped Conv1d + conv_post), `discriminators.1..5` = DiscriminatorP for periods 2, 3, 5, 7, 11
(Conv2d 1 -> 32 -> 128 -> 512 -> 1024 -> 1024 + conv_post). Every conv is weight-normed (keys `weight_g` /
`weight_v`, translated from torch parametrizations) unless use_spectral_norm (keys `weight_orig`, `weight_u`,
`weight_v`, as upstream's torch.nn.utils.spectral_norm).

`width_divisor` > 1 divides every channel count and group count (never below 1): same keys, smaller tensors.
It exists for tests and experiments; only width_divisor 1 gives upstream-shaped D files.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..models.weight_norm import to_internal, upstream_items, weight_norm

PERIODS = (2, 3, 5, 7, 11)
LRELU_SLOPE = 0.1
# DiscriminatorS: (in, out, kernel, stride, groups, padding)
_S_LAYERS = ((1, 16, 15, 1, 1, 7), (16, 64, 41, 4, 4, 20), (64, 256, 41, 4, 16, 20), (256, 1024, 41, 4, 64, 20),
             (1024, 1024, 41, 4, 256, 20), (1024, 1024, 5, 1, 1, 2))
_P_CHANNELS = (1, 32, 128, 512, 1024, 1024)
_P_KERNEL, _P_STRIDE = 5, 3


def _norm(use_spectral_norm: bool):
    if not use_spectral_norm:
        return weight_norm

    def spectral(module: nn.Module) -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.nn.utils.spectral_norm(module)  # old API: upstream's weight_orig/_u/_v keys

    return spectral


def _width(channels: int, divisor: int) -> int:
    return channels if channels == 1 else max(1, channels // divisor)


class DiscriminatorS(nn.Module):
    """Scale discriminator on the raw waveform [B, 1, N] -> (logits [B, N'], feature maps)."""

    def __init__(self, use_spectral_norm: bool = False, width_divisor: int = 1) -> None:
        super().__init__()
        norm = _norm(use_spectral_norm)
        d = width_divisor
        self.convs = nn.ModuleList([
            norm(nn.Conv1d(_width(i, d), _width(o, d), k, s, groups=max(1, g // d), padding=p))
            for i, o, k, s, g, p in _S_LAYERS])
        self.conv_post = norm(nn.Conv1d(_width(1024, d), 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _conv_stack(self.convs, self.conv_post, x)


def _conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run conv -> leaky ReLU for each layer, then conv_post; returns (flattened logits, every feature map)."""
    fmap = []
    for layer in convs:
        x = F.leaky_relu(layer(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap


class DiscriminatorP(nn.Module):
    """Period discriminator: waveform folded to [B, 1, N / period, period], 2-D convs along time."""

    def __init__(self, period: int, use_spectral_norm: bool = False, width_divisor: int = 1) -> None:
        super().__init__()
        self.period = period
        norm = _norm(use_spectral_norm)
        ch = [_width(c, width_divisor) for c in _P_CHANNELS]
        pad = (_P_KERNEL - 1) // 2
        self.convs = nn.ModuleList(
            [norm(nn.Conv2d(ch[i], ch[i + 1], (_P_KERNEL, 1), (_P_STRIDE, 1), padding=(pad, 0))) for i in range(4)]
            + [norm(nn.Conv2d(ch[4], ch[5], (_P_KERNEL, 1), 1, padding=(pad, 0)))])
        self.conv_post = norm(nn.Conv2d(ch[5], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            extra = self.period - t % self.period
            x = F.pad(x, (0, extra), "reflect")
            t += extra
        return _conv_stack(self.convs, self.conv_post, x.view(b, c, t // self.period, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """forward(y, y_hat) -> (real logits, fake logits, real feature maps, fake feature maps), one per sub-D.

    `periods`: the DiscriminatorP periods after the DiscriminatorS (so-vits: 2, 3, 5, 7, 11; RVC passes its own)."""

    def __init__(self, use_spectral_norm: bool = False, width_divisor: int = 1,
                 periods: tuple[int, ...] = PERIODS) -> None:
        super().__init__()
        if width_divisor < 1:
            raise ValueError("width_divisor must be >= 1")
        self.use_spectral_norm = use_spectral_norm
        self.width_divisor = width_divisor
        self.periods = tuple(periods)
        self.discriminators = nn.ModuleList(
            [DiscriminatorS(use_spectral_norm, width_divisor)]
            + [DiscriminatorP(p, use_spectral_norm, width_divisor) for p in self.periods])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> tuple[list, list, list, list]:
        real, fake, fmap_real, fmap_fake = [], [], [], []
        for disc in self.discriminators:
            r, fr = disc(y)
            g, fg = disc(y_hat)
            real.append(r)
            fake.append(g)
            fmap_real.append(fr)
            fmap_fake.append(fg)
        return real, fake, fmap_real, fmap_fake

    # ------------------------------------------------------------------------------ upstream layout
    def upstream_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict with upstream's D_*.pth key names (weight_g / weight_v, or spectral-norm keys)."""
        items = self.state_dict() if self.use_spectral_norm else upstream_items(self)
        return {k: v.detach() for k, v in items.items()}

    def load_upstream_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a D_*.pth "model" dict (optional 'module.' prefix); ModelError on any key or shape mismatch."""
        if state and all(k.startswith("module.") for k in state):
            state = {k[len("module."):]: v for k, v in state.items()}
        expected = self.upstream_state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [f"{k} {list(state[k].shape)} (expected {list(expected[k].shape)})"
                 for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
        if missing or unexpected or wrong:
            parts = [f"{name}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                     for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong))
                     if keys]
            hint = (" The file uses spectral norm (model.use_spectral_norm) differently."
                    if any(k.endswith(("weight_orig", "weight_g")) for k in missing) else "")
            raise ModelError(f"The discriminator checkpoint does not match a MultiPeriodDiscriminator with periods "
                             f"{list(self.periods)} (" + "; ".join(parts) + ")." + hint)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        internal = state if self.use_spectral_norm else to_internal(self, state)
        self.load_state_dict(internal, strict=True)
