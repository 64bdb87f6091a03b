"""RVC's pitch front-end: f0 over the whole padded 16 kHz input with RVC's per-method steps, and its coarse mapping.

RVC (WebUI `Pipeline.get_f0`) runs every predictor at 16 kHz with a 160-sample hop (100 frames/s) on the
high-passed, reflect-padded input, keeps raw f0 (unvoiced frames stay 0 Hz: no interpolation), multiplies by
2**(transpose/12) and maps Hz to 255 mel-spaced "coarse" bins for the text encoder's pitch embedding. The float f0
goes to the NSF source, whose uv gate is f0 > 0. The predictors are svc_core.f0's; only RVC's steps around them
live here:

- pm: Praat autocorrelation on the float64 input, zero-padded to p_len with the odd frame in front (RVC never crops
  a longer result: the caller keeps the first p_len frames).
- harvest: WORLD Harvest + StoneMask at 10 ms (p_len + 1 frames, not resized), median filter (kernel 3) when
  filter_radius > 2.
- crepe: torchcrepe "full" decoded per 512 frames, periodicity median (3), f0 mean (3), f0 := 0 where
  periodicity < threshold (0.1).
- rmvpe: salience threshold 0.03 (RVC's `thred`), frames as the mel gives them (1 + N // 160).
- fcpe: torchfcpe with our predictor's threshold (not in RVC 20240604; Applio's addition).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..constants import ENCODER_SAMPLE_RATE, F0_MAX, F0_MIN
from ..errors import OptionError
from ..f0 import get_predictor
from ..f0.base import SEMITONES_PER_OCTAVE, validate_wav

RVC_F0_HOP = 160  # samples at 16 kHz per f0 frame (10 ms, 100 frames/s)
HARVEST_FRAME_MS = 10.0  # RVC's harvest frame period
MEDIAN_KERNEL = 3  # harvest median filter width (frames), applied when filter_radius > MEDIAN_MIN_RADIUS
MEDIAN_MIN_RADIUS = 2
COARSE_BINS = 255  # pitch embedding rows 1..255 (0 unused)
MEL_FACTOR = 1127.0  # mel = 1127 ln(1 + f / 700)
MEL_BREAK_HZ = 700.0
CREPE_THRESHOLD = 0.1  # RVC drops crepe frames whose (median-filtered) periodicity is below this
CREPE_DECODE_FRAMES = 512  # RVC's torchcrepe.predict batch_size: viterbi decoding runs per batch
RMVPE_THRESHOLD = 0.03  # RVC's RMVPE salience threshold (`thred`)


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return MEL_FACTOR * np.log(1.0 + np.asarray(hz, dtype=np.float64) / MEL_BREAK_HZ)


MEL_MIN = float(_mel(F0_MIN))
MEL_MAX = float(_mel(F0_MAX))


def coarse_pitch(hz: np.ndarray) -> np.ndarray:
    """f0 [N] Hz (float64; 0 = unvoiced) -> RVC's coarse pitch [N] int32 in 1..255.

    Voiced frames map linearly in mel from 50 Hz (bin 1) to 1100 Hz (bin 255), rounded half to even; unvoiced and
    out-of-range frames clamp to 1 / 255.
    """
    mel = _mel(hz)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - MEL_MIN) * (COARSE_BINS - 1) / (MEL_MAX - MEL_MIN) + 1
    mel[mel <= 1] = 1
    mel[mel > COARSE_BINS] = COARSE_BINS
    return np.rint(mel).astype(np.int32)


@dataclass(frozen=True)
class F0Request:
    """One RVC f0 computation: padded 16 kHz audio (float64 [N]) and the frames the pipeline wants."""

    audio: np.ndarray
    p_len: int
    filter_radius: int
    threshold: Optional[float]
    weights_path: Optional[str]
    device: str


def _predictor(name: str, request: F0Request, threshold: Optional[float] = None):
    return get_predictor(name, hop_length=RVC_F0_HOP, sampling_rate=ENCODER_SAMPLE_RATE, device=request.device,
                         threshold=threshold, weights_path=request.weights_path)


def _pm(request: F0Request) -> np.ndarray:
    """Praat f0 on the float64 input, zero-padded to p_len with the odd frame in front (Praat's frame count is
    always below N // 160 at these settings, so nothing is cropped)."""
    return _predictor("pm", request)._raw_f0(request.audio, request.p_len)


def _harvest(request: F0Request) -> np.ndarray:
    """WORLD Harvest + StoneMask at 10 ms: len(audio) // 160 + 1 frames; median 3 when filter_radius > 2."""
    from scipy.signal import medfilt

    from ..f0.classic import load_pyworld

    predictor = _predictor("harvest", request)
    f0, times = predictor._estimate(request.audio, HARVEST_FRAME_MS)
    f0 = load_pyworld().stonemask(request.audio, f0, times, ENCODER_SAMPLE_RATE)
    if request.filter_radius > MEDIAN_MIN_RADIUS:
        f0 = medfilt(f0, MEDIAN_KERNEL)
    return f0


def _natural_frames(audio: np.ndarray) -> int:
    return audio.shape[0] // RVC_F0_HOP + 1  # centred STFT / torchcrepe framing


def _crepe(request: F0Request) -> np.ndarray:
    """torchcrepe full, viterbi-decoded per RVC's 512-frame batch (torchcrepe.predict decodes batch by batch);
    periodicity median 3, f0 mean 3, then f0 := 0 where periodicity < threshold. torchcrepe's pitch dither is drawn
    from a fixed seed (svc_core.f0.crepe), so the same input gives the same f0 (RVC's varies run to run)."""
    from ..f0.crepe import FILTER_WIDTH, _SeededNumpyRNG

    threshold = CREPE_THRESHOLD if request.threshold is None else request.threshold
    predictor = _predictor("crepe", request)
    tc = predictor._torchcrepe
    probabilities = predictor._probabilities(torch.from_numpy(validate_wav(request.audio))[None])
    pitches, periods = [], []
    with _SeededNumpyRNG():
        for start in range(0, probabilities.shape[-1], CREPE_DECODE_FRAMES):
            group = probabilities[..., start: start + CREPE_DECODE_FRAMES].clone()
            pitch, period = tc.postprocess(group, F0_MIN, F0_MAX, tc.decode.viterbi, False, True)
            pitches.append(pitch)
            periods.append(period)
    periodicity = tc.filter.median(torch.cat(periods, dim=1), FILTER_WIDTH)
    pitch = tc.filter.mean(torch.cat(pitches, dim=1), FILTER_WIDTH)
    pitch[periodicity < threshold] = 0
    return pitch[0].double().numpy()


def _rmvpe(request: F0Request) -> np.ndarray:
    threshold = RMVPE_THRESHOLD if request.threshold is None else request.threshold
    predictor = _predictor("rmvpe", request, threshold)
    return predictor.compute_raw_f0(request.audio, _natural_frames(request.audio)).astype(np.float64)


def _fcpe(request: F0Request) -> np.ndarray:
    predictor = _predictor("fcpe", request, request.threshold)
    return predictor.compute_raw_f0(request.audio, _natural_frames(request.audio)).astype(np.float64)


# name -> raw f0 (float64 Hz, 0 = unvoiced, RVC's own frame count: the caller keeps the first p_len frames)
RVC_F0_STEPS: dict[str, Callable[[F0Request], np.ndarray]] = {
    "pm": _pm, "harvest": _harvest, "crepe": _crepe, "rmvpe": _rmvpe, "fcpe": _fcpe,
}


def raw_f0(predictor_name: str, audio_pad: np.ndarray, p_len: int, filter_radius: int,
           threshold: Optional[float] = None, weights_path: str | os.PathLike | None = None,
           device: str = "cpu") -> np.ndarray:
    """f0 float64 [F] Hz (0 = unvoiced) of the padded 16 kHz input before transposition, F = the method's own
    frame count (pm: p_len; harvest, crepe, rmvpe, fcpe: N // 160 + 1). Cacheable: transpose is applied later."""
    if predictor_name not in RVC_F0_STEPS:
        raise OptionError(f"RVC voices take the f0 predictors {', '.join(RVC_F0_STEPS)}; got '{predictor_name}'.")
    audio = np.ascontiguousarray(audio_pad, dtype=np.float64)
    validate_wav(audio)  # AudioError on NaN / wrong shape
    request = F0Request(audio, int(p_len), int(filter_radius), threshold,
                        None if weights_path is None else os.fspath(weights_path), device)
    return RVC_F0_STEPS[predictor_name](request).astype(np.float64, copy=False)


def transposed(hz: np.ndarray, transpose: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw f0 float64 [F] -> RVC's get_f0 result: (coarse int32 [F], Hz * 2**(transpose/12) float64 [F])."""
    hz = hz * 2.0 ** (transpose / SEMITONES_PER_OCTAVE)
    return coarse_pitch(hz), hz


def pitch_inputs(hz: np.ndarray, p_len: int, transpose: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw f0 float64 [F] -> the pipeline's (coarse int64 [p_len], Hz float32 [p_len]): transposed, cut to p_len
    (a method giving fewer frames is zero-padded at the end: RVC itself would fail on the shorter pitch)."""
    coarse, hz = transposed(hz, transpose)
    coarse, hz = coarse[:p_len].astype(np.int64), hz[:p_len].astype(np.float32)
    short = p_len - coarse.shape[0]
    if short > 0:
        coarse = np.pad(coarse, (0, short), constant_values=1)
        hz = np.pad(hz, (0, short))
    return coarse, hz


def rvc_f0_raw(predictor_name: str, audio_pad: np.ndarray, p_len: int, transpose: float, filter_radius: int,
               threshold: Optional[float] = None, weights_path: str | os.PathLike | None = None,
               device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """RVC's get_f0 as it returns: (coarse int32 [F], transposed Hz float64 [F]); F as `raw_f0`."""
    return transposed(raw_f0(predictor_name, audio_pad, p_len, filter_radius, threshold, weights_path, device),
                      transpose)


def rvc_f0(predictor_name: str, audio_pad: np.ndarray, p_len: int, transpose: float, filter_radius: int,
           threshold: Optional[float] = None, weights_path: str | os.PathLike | None = None,
           device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """f0 of the padded 16 kHz input float64 [N] as RVC's pipeline uses it -> (coarse int64 [p_len] for the pitch
    embedding, Hz float32 [p_len] for the NSF source; 0 Hz = unvoiced)."""
    return pitch_inputs(raw_f0(predictor_name, audio_pad, p_len, filter_radius, threshold, weights_path, device),
                        p_len, transpose)
