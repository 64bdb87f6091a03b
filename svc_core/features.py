"""Frame-level features shared by inference and training: unit stretching, loudness, envelope mixing."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .constants import HOP_LENGTH

INTERPOLATE_MODES = ("left", "nearest", "nearest-exact", "linear")
SPEC_MAG_EPS = 1e-6  # added under the square root of the spectrogram magnitude (upstream's value)

_hann_windows: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def linear_spectrogram(wav: torch.Tensor, n_fft: int = 2048, hop_length: int = HOP_LENGTH,
                       win_length: int = 2048) -> torch.Tensor:
    """so-vits' training spectrogram: wav [B, N] or [N] in -1..1 -> magnitude [B, n_fft/2+1, N // hop] (or [F, T]).

    Reflect padding of (n_fft - hop) / 2 on each side, Hann window, center=False, sqrt(re^2 + im^2 + 1e-6).
    """
    squeeze = wav.dim() == 1
    x = (wav[None] if squeeze else wav).float()
    pad = (n_fft - hop_length) // 2
    x = F.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    key = (win_length, str(x.device), x.dtype)
    if key not in _hann_windows:
        _hann_windows[key] = torch.hann_window(win_length, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=hop_length, win_length=win_length, window=_hann_windows[key],
                      center=False, return_complex=True)
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + SPEC_MAG_EPS)
    return mag[0] if squeeze else mag


def stretch_units(units: torch.Tensor, n_frames: int, mode: str = "left") -> torch.Tensor:
    """Stretch content features [C, T_c] (50 fps) onto the f0 grid -> [C, n_frames].

    "left" (4.0 and default) and "nearest" both pick source frame floor(i * T_c / n_frames) for target frame i;
    they are computed the way upstream does so rounding at exact boundaries agrees. "linear" interpolates.
    """
    if units.dim() != 2:
        raise ValueError(f"units must be [C, T_c], got {tuple(units.shape)}")
    src = units.shape[-1]
    if mode == "left":
        # boundaries[k] = k * n_frames / src (float32, like upstream); frame i takes the last k with boundary <= i
        boundaries = torch.arange(src + 1) * n_frames / src
        index = torch.searchsorted(boundaries[1:].contiguous(), torch.arange(n_frames, dtype=boundaries.dtype),
                                   right=True)
        return units[:, index.clamp(max=src - 1)].to(torch.float32)
    if mode in ("nearest", "nearest-exact", "linear"):
        return F.interpolate(units[None].float(), size=n_frames, mode=mode)[0]
    raise ValueError(f"unknown unit_interpolate_mode '{mode}'; expected one of {', '.join(INTERPOLATE_MODES)}")


def frame_volume(wav: torch.Tensor, hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """Linear RMS loudness per hop [..., N] -> [..., N // hop] (half-hop reflect padding, 4.1-Stable)."""
    n_frames = wav.shape[-1] // hop_length
    power = F.pad((wav.float() ** 2)[None] if wav.dim() == 1 else wav.float() ** 2,
                  (hop_length // 2, (hop_length + 1) // 2), mode="reflect")
    power = power[..., : n_frames * hop_length].reshape(*power.shape[:-1], n_frames, hop_length)
    vol = power.mean(dim=-1).sqrt()
    return vol[0] if wav.dim() == 1 else vol


def _frame_rms(wav: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS over centred frames (zero padding of frame // 2 each side), like librosa.feature.rms."""
    padded = np.pad(wav.astype(np.float64), (frame // 2, frame // 2))
    n = 1 + (len(padded) - frame) // hop
    csum = np.concatenate([[0.0], np.cumsum(padded ** 2)])
    starts = np.arange(n) * hop
    return np.sqrt(np.maximum((csum[starts + frame] - csum[starts]) / frame, 0.0))


def mix_loudness_envelope(source: np.ndarray, output: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Blend the output's loudness envelope toward the source's (both [N] at `sr`).

    rate 1 keeps the model's envelope, 0 imposes the input's: out * rms_in^(1-rate) * rms_out^(rate-1), with ~1 s
    RMS frames every 0.5 s interpolated linearly to samples.
    """
    if rate >= 1:
        return output
    frame, hop = sr // 2 * 2, sr // 2
    n = len(output)

    def envelope(x: np.ndarray) -> np.ndarray:
        rms = torch.from_numpy(_frame_rms(x, frame, hop)).float()
        return F.interpolate(rms[None, None], size=n, mode="linear")[0, 0].numpy()

    env_in = envelope(source)
    env_out = np.maximum(envelope(output), 1e-6)
    return (output * env_in ** (1 - rate) * env_out ** (rate - 1)).astype(np.float32)
