"""RMVPE f0 predictor: weights loading (so-vits and RVC layouts), mel front-end and salience decoding.

Pipeline (as so-vits-svc 4.1): audio -> 16 kHz (windowed sinc, 128 zero crossings) -> log-mel [128, T] at
100 frames/s -> padded to a multiple of 32 frames -> E2E0 -> salience [T, 360] -> cents by a local weighted
average around the peak -> Hz -> nearest-resized to p_len.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..constants import ENCODER_SAMPLE_RATE
from ..errors import MissingWeightsError, ModelError
from ..resample import sinc_resample
from ..safe_load import load_torch
from .base import F0Predictor, resize_nearest
from .rmvpe_model import N_BINS, N_MELS, E2E0
from .weights import describe_search, find_weights

RMVPE_FILENAME = "rmvpe.pt"
RESAMPLE_ZERO_CROSSINGS = 128  # upstream builds its 16 kHz resampler with lowpass_filter_width=128
N_FFT = 1024
WIN_LENGTH = 1024
MEL_HOP = 160  # samples at 16 kHz -> 100 frames/s
MEL_FMIN = 30.0
MEL_FMAX = 8000.0
LOG_CLAMP = 1e-5
FRAME_MULTIPLE = 32  # the U-Net pools the time axis 5 times by 2
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0 (re 10 Hz)
REF_HZ = 10.0  # cents are measured from 10 Hz
LOCAL_RADIUS = 4  # bins each side of the peak in the weighted average
TF_PREFIX = "unet.tf."  # TimbreFilter keys: in so-vits files, absent from RVC's, unused by E2E0

GET_RMVPE = (
    "so-vits-svc uses the RMVPE release by yxlllc (https://github.com/yxlllc/RMVPE/releases, tag 230917, "
    "rmvpe.zip): unpack it and rename model.pt to rmvpe.pt. RVC's assets/rmvpe/rmvpe.pt also works. "
    "Put the file in ./pretrain or in the folder named by $SVC_PRETRAIN_DIR, or pass its path."
)


# ----------------------------------------------------------------------------------------------- weights
def _state_dict_of(ckpt: Any, name: str) -> Mapping[str, torch.Tensor]:
    """so-vits' {'model': state_dict} or RVC's bare state dict -> the state dict."""
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model"), Mapping):
        ckpt = ckpt["model"]
    if not isinstance(ckpt, Mapping) or not ckpt or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ModelError(
            f"RMVPE weights '{name}' are neither so-vits' {{'model': state_dict}} nor a bare state dict of tensors."
        )
    return ckpt


def load_rmvpe_model(
    weights_path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> E2E0:
    """Find rmvpe.pt (weights_path, $SVC_PRETRAIN_DIR, ./pretrain), read it safely, return E2E0 in eval mode.

    Accepts so-vits' {'model': sd} (with unet.tf.*) and RVC's bare sd (without). Keys other than unet.tf.*
    must match exactly. Raises MissingWeightsError, UnsafeFileError or ModelError.
    """
    path = find_weights(RMVPE_FILENAME, weights_path)
    if path is None:
        from .registry import predictors_without_files

        raise MissingWeightsError(
            "The RMVPE f0 predictor",
            os.fspath(weights_path) if weights_path is not None else RMVPE_FILENAME,
            f"Looked in {describe_search(RMVPE_FILENAME, weights_path)}. {GET_RMVPE}",
            f"F0 predictors that need no file: {', '.join(predictors_without_files())}.",
        )
    name = os.path.basename(path)
    state = dict(_state_dict_of(load_torch(path, what="RMVPE weights"), name))
    model = E2E0()
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(TF_PREFIX)]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ModelError(
            f"RMVPE weights '{name}' do not match the RMVPE network (E2E0, 4 blocks, 1 GRU): "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})."
        )
    wrong = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        raise ModelError(
            f"RMVPE weights '{name}' have {len(wrong)} tensors of the wrong shape, e.g. {k}: "
            f"{tuple(state[k].shape)} instead of {tuple(expected[k].shape)}."
        )
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------------- front end
def resample_to_16k(wav: torch.Tensor, sampling_rate: int) -> torch.Tensor:
    """[N] at sampling_rate -> [ceil(N * 16000 / sr)] with upstream's 128-zero-crossing Hann sinc filter."""
    return sinc_resample(wav, int(sampling_rate), ENCODER_SAMPLE_RATE, zero_crossings=RESAMPLE_ZERO_CROSSINGS)


@lru_cache(maxsize=4)
def _mel_basis(device: str) -> torch.Tensor:
    import librosa

    basis = librosa.filters.mel(
        sr=ENCODER_SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX, htk=True
    )
    return torch.from_numpy(basis).float().to(device)


def log_mel(wav16k: torch.Tensor) -> torch.Tensor:
    """[n] 16 kHz -> natural-log mel [128, 1 + n // 160] (HTK mel, Slaney-normalised filters, clamp 1e-5)."""
    window = torch.hann_window(WIN_LENGTH, device=wav16k.device)
    spec = torch.stft(
        wav16k, N_FFT, hop_length=MEL_HOP, win_length=WIN_LENGTH, window=window, center=True, return_complex=True
    )
    magnitude = spec.abs()
    mel = _mel_basis(str(wav16k.device)) @ magnitude
    return torch.log(torch.clamp(mel, min=LOG_CLAMP))


# ------------------------------------------------------------------------------------------------ decoding
def bin_cents() -> torch.Tensor:
    """Cents (re 10 Hz) of each of the 360 salience bins: 20 * bin + 1997.379..."""
    return CENTS_PER_BIN * torch.arange(N_BINS, dtype=torch.float32) + CENTS_OFFSET


def salience_to_cents(salience: torch.Tensor, threshold: float) -> torch.Tensor:
    """[T, 360] -> [T] cents: salience-weighted mean over the peak bin +-4; 0 where the peak <= threshold."""
    padded = F.pad(salience, (LOCAL_RADIUS, LOCAL_RADIUS))
    cents = F.pad(bin_cents().to(salience.device), (LOCAL_RADIUS, LOCAL_RADIUS))
    peak = salience.argmax(dim=1)  # window in padded coordinates: peak .. peak + 2 * radius
    index = peak[:, None] + torch.arange(2 * LOCAL_RADIUS + 1, device=salience.device)[None, :]
    weights = padded.gather(1, index)
    result = (weights * cents[index]).sum(1) / weights.sum(1)
    return torch.where(padded.max(dim=1).values <= threshold, torch.zeros_like(result), result)


def cents_to_hz(cents: torch.Tensor) -> torch.Tensor:
    """10 * 2**(cents / 1200), with 0 cents (unvoiced) -> 0 Hz."""
    hz = REF_HZ * torch.pow(2.0, cents / 1200.0)
    return torch.where(cents == 0, torch.zeros_like(hz), hz)


# ----------------------------------------------------------------------------------------------- predictor
class RMVPEPredictor(F0Predictor):
    """RMVPE pitch at 100 frames/s, nearest-resized to p_len. A weights_path ending in .onnx (an export of
    `python -m svc_core export-onnx --f0 rmvpe`) runs the network on ONNX Runtime instead of torch."""

    name = "rmvpe"

    def __init__(self, *args, weights_path: str | os.PathLike | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if weights_path is not None and os.fspath(weights_path).lower().endswith(".onnx"):
            from ..onnx.f0_export import OnnxRmvpeNetwork

            self.model = OnnxRmvpeNetwork(weights_path, str(self.device))
        else:
            self.model = load_rmvpe_model(weights_path, self.device)

    def salience(self, wav: np.ndarray) -> torch.Tensor:
        """Validated float32 audio [N] at self.sampling_rate -> salience [1 + n16k // 160, 360]."""
        audio = resample_to_16k(torch.from_numpy(wav).to(self.device), self.sampling_rate)
        mel = log_mel(audio)  # [128, T]
        n_frames = mel.shape[-1]
        padded_len = FRAME_MULTIPLE * ((n_frames - 1) // FRAME_MULTIPLE + 1)
        mel = F.pad(mel, (0, padded_len - n_frames))
        with torch.no_grad():
            return self.model(mel[None])[0, :n_frames].float()

    def _raw_f0(self, wav: np.ndarray, p_len: int) -> np.ndarray:
        n16k = math.ceil(wav.shape[0] * ENCODER_SAMPLE_RATE / self.sampling_rate)
        if n16k <= N_FFT // 2:  # too short for the centred STFT's reflect padding
            return np.zeros(p_len)
        f0 = cents_to_hz(salience_to_cents(self.salience(wav), self.threshold))
        return resize_nearest(f0.cpu().numpy(), p_len)
