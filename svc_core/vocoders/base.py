"""Mel vocoders: the second stage of shallow diffusion turns a log-mel back into a waveform.

A `MelVocoder` knows its own mel (extract: audio -> log-mel, the mel a diffusion model is trained on) and inverts
it (decode: log-mel + f0 -> audio). Every random draw of decode goes through a NoiseSource
(svc_core/noise.py; default TorchNoise() = torch's global RNG, in upstream's order).
"""
from __future__ import annotations

import torch
from torch import nn

from ..noise import NoiseSource
from ..resample import sinc_resample
from .mel import MelExtractor, MelSettings

RESAMPLE_ZERO_CROSSINGS = 128  # upstream resamples into the vocoder's rate with torchaudio lowpass_filter_width=128


class MelVocoder(nn.Module):
    """Base class. Subclasses implement `decode`; `extract` is the vocoder's own mel (MelSettings).

    Attributes: sample_rate (Hz), hop_size (samples per frame), n_mels, n_fft, win_size (samples), fmin, fmax (Hz).
    """

    kind: str = ""

    def __init__(self, settings: MelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.sample_rate = settings.sample_rate
        self.hop_size = settings.hop_size
        self.n_mels = settings.n_mels
        self.n_fft = settings.n_fft
        self.win_size = settings.win_size
        self.fmin = settings.fmin
        self.fmax = settings.fmax
        self.mel = MelExtractor(settings)

    @property
    def device(self) -> torch.device:
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    @torch.no_grad()
    def extract(self, audio: torch.Tensor, keyshift: float = 0.0, *, sample_rate: int | None = None) -> torch.Tensor:
        """audio [B, N] float32 at `sample_rate` (default: the vocoder's) -> natural-log mel [B, frames, n_mels].

        Another rate is resampled first (sinc, 128 zero crossings, as upstream's Vocoder.extract)."""
        if audio.dim() == 1:
            audio = audio[None]
        if sample_rate is not None and sample_rate != self.sample_rate:
            audio = sinc_resample(audio, sample_rate, self.sample_rate, zero_crossings=RESAMPLE_ZERO_CROSSINGS)
        return self.mel(audio.to(self.device), keyshift).transpose(1, 2)

    def decode(self, mel: torch.Tensor, f0: torch.Tensor, noise: NoiseSource | None = None,
               chunk_frames: int = 0, span: tuple[int, int] | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """mel [B, T, n_mels] (natural log) + f0 [B, T] Hz (0 = unvoiced) -> audio [B, T*hop_size] float32, or
        [B, (stop - start) * hop_size] for span = (start, stop) frames. chunk_frames > 0 decodes that many frames
        at a time (bounded memory, same samples). dtype bfloat16 / float16: reduced precision (opt-in,
        svc_core.precision; None = float32)."""
        raise NotImplementedError
