"""Band-limited sinc resampling with a Hann-windowed kernel, bit-compatible with upstream's resampler.

so-vits-svc resamples the 44.1 kHz slice to 16 kHz for the content encoder with a windowed-sinc polyphase filter
(Hann window, 6 zero crossings, roll-off 0.99; the torchaudio default). We rebuild that filter here so features
match upstream exactly without torchaudio. For general-purpose rate conversion (user uploads) use
`svc_core.audio.resample`, which uses soxr.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

ZERO_CROSSINGS = 6  # half-width of the sinc kernel, in zero crossings of the lower rate
ROLLOFF = 0.99  # cutoff as a fraction of the lower Nyquist frequency


@lru_cache(maxsize=16)
def _kernel(orig: int, new: int, zero_crossings: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Polyphase filter bank [new, 1, 2*width + orig] (float32) and its half width in input samples.

    `orig` and `new` are already divided by their gcd.
    """
    cutoff = min(orig, new) * rolloff  # in units of the reduced rates
    width = math.ceil(zero_crossings * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64) / orig  # input offsets, seconds * orig
    # Output sub-sample phase of each filter, divided in float32 as torchaudio does (float64 here differs from
    # torchaudio by up to 2e-5 at 441:467, the enhancer's +1 semitone rate; this way the kernels are bit-equal).
    phases = (torch.arange(0, -new, -1, dtype=torch.float32)[:, None] / new).double()
    t = ((phases + taps[None, :]) * cutoff).clamp(-zero_crossings, zero_crossings)
    hann = torch.cos(t * (math.pi / (2 * zero_crossings))) ** 2
    arg = t * math.pi
    safe = torch.where(arg == 0, torch.ones_like(arg), arg)
    sinc = torch.where(arg == 0, torch.ones_like(arg), torch.sin(safe) / safe)
    bank = (sinc * hann * (cutoff / orig)).to(torch.float32)
    return bank[:, None, :], width


def sinc_resample(wav: torch.Tensor, orig_sr: int, new_sr: int, zero_crossings: int = ZERO_CROSSINGS) -> torch.Tensor:
    """Resample `wav` [..., N] float32 from `orig_sr` to `new_sr` Hz -> [..., ceil(N * new_sr / orig_sr)].

    `zero_crossings` sets the kernel half-width (6 for the content encoders' path, 128 for upstream's RMVPE).
    """
    if orig_sr == new_sr:
        return wav
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    bank, width = _kernel(orig, new, int(zero_crossings), ROLLOFF)
    lead = wav.shape[:-1]
    flat = wav.reshape(-1, wav.shape[-1]).to(torch.float32)
    n = flat.shape[-1]
    padded = F.pad(flat, (width, width + orig))
    out = F.conv1d(padded[:, None, :], bank.to(flat.device), stride=orig)  # [B, new, frames]
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    target = math.ceil(new * n / orig)
    return out[:, :target].reshape(*lead, -1)


class Resample(torch.nn.Module):
    """Module form of `sinc_resample` (same call signature as the torchaudio transform)."""

    def __init__(self, orig_freq: int = 16000, new_freq: int = 16000, *args, **kwargs) -> None:
        super().__init__()
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return sinc_resample(waveform, self.orig_freq, self.new_freq)
