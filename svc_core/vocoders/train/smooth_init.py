"""Smooth initialisation of the generator's upsampling layers: no frame-rate buzz at step 0.

A transposed convolution with kernel 2u and stride u and random taps prints one fixed pattern per input sample:
at the first layer that is a buzz at sample_rate / hop (86.1 Hz at 44.1 kHz, hop 512), which a from-scratch
vocoder keeps for thousands of steps (measured here: every validation clip's Praat pitch was 86.1 Hz at steps
250-750). Each tap kernel is replaced by random channel mixing times a triangle window whose two overlapping
halves sum to 1 at every output phase (linear interpolation), so a constant input gives a constant output and the
only periodicity left is the harmonic source's.

Measured (starter dataset, 2026-12-06): not a cure. A run with it still gave 86.1 Hz Praat pitch on every validation
clip at step 100 (saturated output, RMS 0.97), as the run without it did at steps 250-1250: the frame-rate pattern
also comes from the frame-wise mel conditioning through the nonlinear residual blocks. Off by default.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize


def triangle_taps(stride: int, kernel: int) -> torch.Tensor:
    """[kernel] taps, h[j] + h[j + stride] = 1 for kernel == 2 * stride (linear interpolation by `stride`)."""
    j = torch.arange(kernel, dtype=torch.float32) + 0.5
    return torch.clamp(1.0 - torch.abs(j - kernel / 2) / stride, min=0.0)


@torch.no_grad()
def smooth_upsampling(generator: nn.Module, seed: int = 0) -> int:
    """Re-initialise generator.ups[i] (weight-normed ConvTranspose1d, kernel 2 x stride) in place; returns the
    number of layers changed (layers of another kernel/stride ratio are left as they are)."""
    gen = torch.Generator().manual_seed(seed)
    changed = 0
    for layer in generator.ups:
        stride, kernel = layer.stride[0], layer.kernel_size[0]
        if kernel != 2 * stride:
            continue
        c_in, c_out = layer.in_channels, layer.out_channels
        mix = torch.randn(c_in, c_out, 1, generator=gen) / math.sqrt(c_in)
        weight = mix * triangle_taps(stride, kernel)[None, None, :]
        if parametrize.is_parametrized(layer, "weight"):
            params = layer.parametrizations.weight
            params.original1.copy_(weight)  # v
            params.original0.copy_(torch.norm_except_dim(weight, 2, 0))  # g = ||v||: w = v
        else:
            layer.weight.copy_(weight)
        changed += 1
    return changed
