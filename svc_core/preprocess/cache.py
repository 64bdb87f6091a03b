"""Training features cached next to each clip, in so-vits-svc's file names and layouts (spec section j):

    X.wav.soft.pt   torch.save(float32 tensor [1, C, T_c])  content features, 16 kHz input, ~50 frames/s
    X.wav.f0.npy    float32 [2, T]: row 0 f0 in Hz interpolated through unvoiced frames, row 1 uv (1 = voiced)
    X.spec.pt       torch.save(float32 tensor [1025, T])     linear magnitude spectrogram
    X.wav.vol.npy   float32 [T]                              frame RMS loudness (svc_core.features.frame_volume)

T = N // 512 for a clip of N samples at 44.1 kHz. The f0 file is a plain float array (np.load without pickle);
upstream's pickled object array unpacks the same way. A file is reused when it loads, has the right shape and
is not older than its clip. With `use_diff`, also the diffusion caches of svc_core.preprocess.diffcache
(X.wav.mel.npy, X.wav.aug_mel.npy, X.wav.aug_key.npy, X.wav.aug_vol.npy).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..constants import ENCODER_HOP_LENGTH, ENCODER_SAMPLE_RATE, HOP_LENGTH, MODEL_SAMPLE_RATE
from ..encoders import encoder_info, get_encoder
from ..errors import AudioError
from ..f0 import get_predictor
from ..features import frame_volume, linear_spectrogram
from ..resample import sinc_resample
from ..safe_load import load_torch
from . import diffcache

N_FFT = 2048
WIN_LENGTH = 2048
CONTENT_FRAME_SLACK = 3  # content frames may differ from N16 / 320 by this much (encoder edge effects)
KINDS = ("soft", "f0", "spec", "vol")


def all_kinds(use_diff: bool) -> tuple[str, ...]:
    """The cache kinds a run writes: the four base ones, plus the diffusion ones with use_diff."""
    return KINDS + (diffcache.DIFF_KINDS if use_diff else ())


def cache_paths(clip: Path) -> dict[str, Path]:
    """Upstream names of the four cache files of clip X.wav."""
    stem = clip.with_suffix("")
    return {"soft": Path(f"{clip}.soft.pt"), "f0": Path(f"{clip}.f0.npy"), "spec": Path(f"{stem}.spec.pt"),
            "vol": Path(f"{clip}.vol.npy")}


def spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """float32 [N] -> linear magnitude [1025, N // 512], the training spectrogram (svc_core.features)."""
    return linear_spectrogram(wav, N_FFT, HOP_LENGTH, WIN_LENGTH)


def content_frames(n_samples: int) -> float:
    """Expected content frame count (approximately) for a clip of n_samples at 44.1 kHz."""
    return math.ceil(n_samples * ENCODER_SAMPLE_RATE / MODEL_SAMPLE_RATE) / ENCODER_HOP_LENGTH


def _load(kind: str, path: Path) -> np.ndarray | torch.Tensor:
    if kind in ("soft", "spec"):
        return load_torch(path, what="cached features")
    return np.load(path, allow_pickle=False)


def is_valid(kind: str, path: Path, clip: Path, n_samples: int, content_dim: int) -> bool:
    """True when `path` exists, is not older than `clip`, loads safely and has the shape a clip of n_samples
    needs (content_dim channels for the content features)."""
    try:
        if path.stat().st_mtime_ns < clip.stat().st_mtime_ns:
            return False
        value = _load(kind, path)
    except Exception:  # missing, truncated, pickled, ...: recompute
        return False
    t = n_samples // HOP_LENGTH
    if kind == "soft":
        return (isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.dim() == 3
                and value.shape[0] == 1 and value.shape[1] == content_dim
                and abs(value.shape[2] - content_frames(n_samples)) <= CONTENT_FRAME_SLACK)
    if kind == "spec":
        return isinstance(value, torch.Tensor) and tuple(value.shape) == (N_FFT // 2 + 1, t)
    if kind == "f0":
        return value.dtype == np.float32 and value.shape == (2, t)
    return value.dtype == np.float32 and value.shape == (t,)


def _save_atomic(kind: str, path: Path, value: np.ndarray | torch.Tensor) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as fh:
        if kind in ("soft", "spec"):
            torch.save(value, fh)
        else:
            np.save(fh, value, allow_pickle=False)
    os.replace(tmp, path)


@dataclass
class FeatureTools:
    """The encoder and f0 predictor, built on first use (a rerun with a complete cache loads neither)."""

    encoder: str
    encoder_path: str | None
    f0: str
    f0_weights: str | None
    f0_threshold: float = 0.05
    device: str = "cpu"
    use_diff: bool = False  # also the diffusion caches (vocoder mel, augmented mel / volume)
    mel_vocoder: str | None = None  # NSF-HiFiGAN whose mel settings to use (None: openvpi's defaults)
    seed: int = 0  # of the diffusion augmentation draw

    def __post_init__(self) -> None:
        self._encoder = None
        self._predictor = None
        self._mel = None
        self.content_dim = encoder_info(self.encoder).dim

    @property
    def mel(self) -> diffcache.MelExtraction:
        """The vocoder's mel extraction, built on first use."""
        if self._mel is None:
            self._mel = diffcache.mel_extraction(self.mel_vocoder, self.device)
        return self._mel

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """44.1 kHz float32 [N] -> content features [1, C, T_c] float32 on the CPU."""
        if self._encoder is None:
            self._encoder = get_encoder(self.encoder, self.encoder_path, self.device)
        wav16 = sinc_resample(wav.to(self._encoder.device), MODEL_SAMPLE_RATE, ENCODER_SAMPLE_RATE)
        return self._encoder.encode(wav16).float().cpu().contiguous()

    def f0_uv(self, wav: np.ndarray) -> np.ndarray:
        """44.1 kHz float32 [N] -> float32 [2, N // 512] (interpolated f0 Hz, uv)."""
        if self._predictor is None:
            self._predictor = get_predictor(self.f0, hop_length=HOP_LENGTH, sampling_rate=MODEL_SAMPLE_RATE,
                                            device=self.device, threshold=self.f0_threshold,
                                            weights_path=self.f0_weights)
        f0, uv = self._predictor.compute_f0_uv(wav)
        return np.stack([np.asarray(f0, np.float32), np.asarray(uv, np.float32)]).astype(np.float32)


def ensure_features(clip: Path, tools: FeatureTools, force: tuple[str, ...] = ()) -> list[str]:
    """Write the missing or stale cache files of `clip`; kinds in `force` are recomputed anyway.

    Returns the kinds that were computed (empty when everything was valid).
    """
    wav, sr = sf.read(str(clip), dtype="float32")
    if sr != MODEL_SAMPLE_RATE or wav.ndim != 1:
        raise AudioError(f"Clip '{clip.name}' is not {MODEL_SAMPLE_RATE} Hz mono; delete it and run preprocess again.")
    n = wav.shape[0]
    paths = cache_paths(clip)
    todo = [k for k in KINDS if k in force or not is_valid(k, paths[k], clip, n, tools.content_dim)]
    wav_t = torch.from_numpy(wav)
    for kind in todo:
        if kind == "soft":
            value = tools.encode(wav_t)
        elif kind == "f0":
            value = tools.f0_uv(wav)
        elif kind == "spec":
            value = spectrogram(wav_t).contiguous()
        else:
            value = frame_volume(wav_t).numpy().astype(np.float32)
        _save_atomic(kind, paths[kind], value)
    if tools.use_diff:
        todo += ensure_diff_features(clip, wav_t, tools, force)
    return todo


def ensure_diff_features(clip: Path, wav: torch.Tensor, tools: FeatureTools, force: tuple[str, ...]) -> list[str]:
    """Write the missing or stale diffusion caches of `clip` (audio `wav` float32 [N] at 44.1 kHz); kinds in
    `force` are recomputed anyway. Returns the kinds computed."""
    paths = diffcache.diff_cache_paths(clip)
    n_mels = tools.mel.n_mels
    todo = [k for k in diffcache.DIFF_KINDS
            if k in force or not diffcache.is_valid_diff(k, paths[k], clip, wav.shape[0], n_mels)]
    if any(k in todo for k in diffcache.AUG_KINDS):  # one draw: all three or none
        todo = sorted(set(todo) | set(diffcache.AUG_KINDS), key=diffcache.DIFF_KINDS.index)
    if not todo:
        return []
    values = diffcache.compute_diff_features(todo, clip, wav, tools.mel.extract, tools.seed)
    for kind in todo:
        _save_atomic(kind, paths[kind], values[kind])
    return todo
