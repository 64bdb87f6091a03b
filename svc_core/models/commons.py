"""Small tensor helpers shared by the synthesizer modules (masks, gated activation, coarse pitch)."""
from __future__ import annotations

import math

import torch

from ..constants import F0_MAX, F0_MIN

LRELU_SLOPE = 0.1  # leaky-ReLU slope inside the HiFiGAN decoder
F0_BINS = 256  # rows of enc_p.f0_emb; coarse pitch indices 1..255, 0 = above F0_MAX (4.1 quirk)
MASK_FILL = -1e4  # attention score for masked positions
TRAIN_LF0_SCALE = (0.8, 1.2)  # range of the random pitch-contour scale applied in training


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding (samples) for an odd kernel with the given dilation."""
    return int((kernel_size * dilation - dilation) / 2)


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """lengths [B] -> bool mask [B, max_length], True inside each sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def subsequent_mask(length: int) -> torch.Tensor:
    """Causal attention mask [1, 1, T, T]: 1 where key index <= query index."""
    return torch.tril(torch.ones(length, length)).unsqueeze(0).unsqueeze(0)


def fused_add_tanh_sigmoid_multiply(a: torch.Tensor, b: torch.Tensor, n_channels: int) -> torch.Tensor:
    """WaveNet gate: (a + b) [B, 2C, T] -> tanh(first C) * sigmoid(last C) [B, C, T]."""
    summed = a + b
    return torch.tanh(summed[:, :n_channels, :]) * torch.sigmoid(summed[:, n_channels:, :])


_MEL_MIN = 1127 * math.log(1 + F0_MIN / 700)
_MEL_MAX = 1127 * math.log(1 + F0_MAX / 700)


def f0_to_coarse(f0: torch.Tensor) -> torch.Tensor:
    """Hz [...] -> long indices [...] for enc_p.f0_emb, exactly as so-vits-svc 4.1.

    The mel pitch between F0_MIN and F0_MAX maps linearly to 1..255 (round half to even); f0 <= ~50 Hz
    (including 0) gives 1, and values that would round to 256 or more give 0.
    """
    scale = (F0_BINS - 2) / (_MEL_MAX - _MEL_MIN)
    offset = _MEL_MIN * scale - 1.0
    mel = 1127 * (1 + f0 / 700).log()
    mel = torch.where(mel > 0, mel * scale - offset, mel)
    coarse = torch.round(mel).long()
    coarse = coarse * (coarse > 0)
    coarse = coarse + (coarse < 1) * 1
    coarse = coarse * (coarse < F0_BINS)
    coarse = coarse + (coarse >= F0_BINS) * 1
    return coarse


def hz_to_lf0(f0: torch.Tensor) -> torch.Tensor:
    """Hz -> the f0 decoder's scaled log pitch: 2595*log10(1 + f0/700) / 500."""
    return 2595.0 * torch.log10(1.0 + f0 / 700.0) / 500


def lf0_to_hz(lf0: torch.Tensor) -> torch.Tensor:
    """Inverse of hz_to_lf0."""
    return 700 * (torch.pow(10, lf0 * 500 / 2595) - 1)


def normalize_lf0(lf0: torch.Tensor, x_mask: torch.Tensor, uv: torch.Tensor,
                  random_scale: bool = False) -> torch.Tensor:
    """Remove the mean over voiced frames: lf0 [B, 1, T], uv [B, T] (0/1) -> [B, 1, T].

    random_scale (training only) multiplies each item by a factor drawn from U(0.8, 1.2).
    """
    uv_sum = torch.sum(uv, dim=1, keepdim=True)
    uv_sum[uv_sum == 0] = 9999
    means = torch.sum(lf0[:, 0, :] * uv, dim=1, keepdim=True) / uv_sum
    if random_scale:
        factor = torch.Tensor(lf0.shape[0], 1).uniform_(*TRAIN_LF0_SCALE).to(lf0.device)
    else:
        factor = torch.ones(lf0.shape[0], 1, device=lf0.device)
    return (lf0 - means.unsqueeze(-1)) * factor.unsqueeze(-1) * x_mask


def rand_slice_segments_with_pitch(x: torch.Tensor, pitch: torch.Tensor, x_lengths: torch.Tensor,
                                   segment_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random training crop: x [B, C, T], pitch [B, T] -> ([B, C, S], [B, S], start frames [B])."""
    ids_str_max = x_lengths - segment_size + 1
    ids_str = (torch.rand([x.size(0)]).to(device=x.device) * ids_str_max).to(dtype=torch.long)
    crop = torch.stack([x[i, :, int(s):int(s) + segment_size] for i, s in enumerate(ids_str)])
    crop_pitch = torch.stack([pitch[i, int(s):int(s) + segment_size] for i, s in enumerate(ids_str)])
    return crop, crop_pitch, ids_str
