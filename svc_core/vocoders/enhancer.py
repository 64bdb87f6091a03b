"""The NSF-HiFiGAN enhancer (upstream `modules/enhancer.py`, so-vits-svc `-eh`): re-vocode so-vits output with the
mel vocoder, optionally as if the voice were `adaptive_key` semitones lower, so the vocoder stays in the pitch
range it was trained on.

Steps (upstream's, spec f.6): factor = 2**(-key/12); adaptive_sr = 100 * round(vocoder_sr / factor / 100)
(round half to even, as numpy); the audio is resampled sr -> adaptive_sr (sinc, 128 zero crossings) and its mel
taken with the vocoder's own settings (so the vocoder hears it key semitones lower); f0 is scaled by
real_factor = vocoder_sr / adaptive_sr and re-timed onto the vocoder's hop grid with np.interp; the vocoded audio
is resampled adaptive_sr -> sr. Key 0 at 44.1 kHz: no resampling, the vocoder re-synthesises its own mel.
The result has mel_frames * hop samples at the adaptive rate, resampled (upstream: a little shorter than the input
when its length is not a multiple of the hop; the caller pads, as upstream's slice_inference does).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..noise import NoiseSource
from ..resample import sinc_resample
from .base import RESAMPLE_ZERO_CROSSINGS, MelVocoder
from .mel import SEMITONES_PER_OCTAVE

RATE_STEP_HZ = 100  # the adaptive rate is rounded to a multiple of this
STAGE = "mel vocoder"  # timing-table name (svc_core.diffusion.stage's MEL_VOCODER_STAGE)


@dataclass(frozen=True)
class EnhancePlan:
    """How one enhancement runs: the rate the vocoder works at and how f0 is mapped onto its frames."""
    adaptive_sr: int  # Hz: the audio is resampled to this before its mel is taken
    real_factor: float  # vocoder_sr / adaptive_sr: f0 is multiplied by it
    f0_frames: int  # f0 values on the vocoder's hop grid (resampled samples // hop + 1)


def adaptive_sample_rate(vocoder_sr: int, adaptive_key: float) -> int:
    """Upstream's adaptive rate (Hz) for a key shift in semitones: 44100 -> 88200 at +12, 46700 at +1."""
    factor = 2 ** (-adaptive_key / SEMITONES_PER_OCTAVE)
    return RATE_STEP_HZ * int(np.round(vocoder_sr / factor / RATE_STEP_HZ))


def _resample(audio: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    return audio if orig == new else sinc_resample(audio, orig, new, zero_crossings=RESAMPLE_ZERO_CROSSINGS)


class Enhancer:
    """Re-vocodes audio with a MelVocoder; `enhance(audio [N], sr, f0 [T] Hz, hop, adaptive_key)`."""

    def __init__(self, vocoder: MelVocoder) -> None:
        self.vocoder = vocoder

    def plan(self, n_samples: int, sr: int, adaptive_key: float = 0.0) -> EnhancePlan:
        """The plan for n_samples of audio at sr Hz."""
        v = self.vocoder
        adaptive_sr = adaptive_sample_rate(v.sample_rate, adaptive_key)
        resampled = n_samples if sr == adaptive_sr else int(np.ceil(adaptive_sr * n_samples / sr))
        return EnhancePlan(adaptive_sr, v.sample_rate / adaptive_sr, resampled // v.hop_size + 1)

    def retime_f0(self, f0: np.ndarray, sr: int, hop: int, plan: EnhancePlan) -> np.ndarray:
        """f0 [T] Hz on the caller's grid (hop samples at sr) -> f0 [plan.f0_frames] float32 Hz on the vocoder's
        grid, scaled by plan.real_factor; held at the first / last value outside the input's span."""
        v = self.vocoder
        scaled = np.asarray(f0, dtype=np.float32).reshape(-1).copy()
        scaled *= plan.real_factor  # float32, as upstream
        time_org = (hop / sr) * np.arange(len(scaled)) / plan.real_factor
        time_frame = (v.hop_size / v.sample_rate) * np.arange(plan.f0_frames)
        return np.interp(time_frame, time_org, scaled, left=scaled[0], right=scaled[-1]).astype(np.float32)

    @torch.no_grad()
    def enhance(self, audio: np.ndarray | torch.Tensor, sr: int, f0: np.ndarray | torch.Tensor, hop: int,
                adaptive_key: float = 0.0, noise: NoiseSource | None = None,
                chunk_frames: int = 0, dtype: torch.dtype | None = None) -> np.ndarray | torch.Tensor:
        """audio [N] float32 at sr Hz + its f0 [T] Hz (one value per `hop` samples) -> enhanced audio at sr Hz
        (numpy in, numpy out). noise / chunk_frames / dtype (reduced precision, opt-in): passed to the vocoder's
        decode."""
        as_numpy = not isinstance(audio, torch.Tensor)
        wav = torch.as_tensor(np.asarray(audio) if as_numpy else audio, dtype=torch.float32).reshape(1, -1)
        f0_np = f0.detach().cpu().numpy() if isinstance(f0, torch.Tensor) else np.asarray(f0)
        plan = self.plan(wav.shape[-1], sr, adaptive_key)
        res = _resample(wav, sr, plan.adaptive_sr)
        plan = replace(plan, f0_frames=res.shape[-1] // self.vocoder.hop_size + 1)
        f0_res = torch.from_numpy(self.retime_f0(f0_np, sr, hop, plan))[None]
        mel = self.vocoder.extract(res)
        out = self.vocoder.decode(mel, f0_res[:, :mel.shape[1]], noise=noise, chunk_frames=chunk_frames, dtype=dtype)
        out = _resample(out.cpu(), plan.adaptive_sr, sr)[0]
        return out.numpy() if as_numpy else out

    def enhance_piece(self, audio: np.ndarray, f0: torch.Tensor | np.ndarray, hop: int, adaptive_key: float = 0.0,
                      noise: NoiseSource | None = None, span: tuple[int, int] | None = None, times: Any = None,
                      sr: int | None = None, chunk_frames: int | None = None,
                      dtype: torch.dtype | None = None) -> np.ndarray:
        """The pipeline's call: so-vits audio [T * hop] float32 at sr (default: the vocoder's rate) + f0 [1, T] or
        [T] Hz -> the enhanced audio of span's frames (all when None), exactly (stop - start) * hop samples.

        The enhanced audio (a little shorter, or longer, than the input after the rate round trip) is fitted to the
        input's length as upstream's slice_inference does (pad_array: zeros split evenly when shorter, the end cut
        when longer), then cut to the span. times: a StageTimes (the work is timed as "mel vocoder")."""
        sr = self.vocoder.sample_rate if sr is None else int(sr)
        f0_np = (f0.detach().cpu().numpy() if isinstance(f0, torch.Tensor) else np.asarray(f0)).reshape(-1)
        chunk = getattr(self.vocoder, "DEFAULT_CHUNK_FRAMES", 0) if chunk_frames is None else chunk_frames
        with times.stage(STAGE) if times is not None else nullcontext():
            out = self.enhance(np.asarray(audio, dtype=np.float32), sr, f0_np, hop, adaptive_key, noise, chunk, dtype)
        n = len(audio)
        if len(out) < n:
            missing = n - len(out)
            out = np.pad(out, (missing // 2, missing - missing // 2))
        out = out[:n]
        start, stop = span if span is not None else (0, n // hop)
        return out[start * hop:stop * hop]
