"""The extra training caches of a diffusion model (`preprocess --use-diff`), in so-vits-svc 4.1's file names:

    X.wav.mel.npy      float32 [T, M]  vocoder log-mel (natural log, M = 128) of the clip
    X.wav.aug_mel.npy  float32 [T, M]  log-mel of the clip played `keyshift` semitones higher and `gain` louder
    X.wav.aug_key.npy  float32 [2]     (keyshift in semitones, log10 of the gain) of that augmented mel  [ours]
    X.wav.aug_vol.npy  float32 [T]     frame RMS loudness of the louder clip (svc_core.features.frame_volume)

(X.wav.vol.npy, the plain loudness, is one of the base caches.) T = N // 512 for N samples at 44.1 kHz.

Upstream stores aug_mel as a pickled numpy object array (mel, keyshift). Nothing here unpickles: the augmented mel
is a plain float array and the shift lives in X.wav.aug_key.npy. An upstream aug_mel file does not load with
allow_pickle=False, so it counts as stale and is recomputed (with aug_vol and aug_key, which share its random
draw) in the plain layout. The draw (keyshift ~ U(-5, 5) semitones, log10 gain ~ U(-1, min(1, log10(1 / peak))))
is seeded from the clip's speaker folder and file name, so reruns and parallel workers write the same files.
"""
from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..constants import HOP_LENGTH, MODEL_SAMPLE_RATE

MAX_KEYSHIFT = 5.0  # semitones: the augmentation's pitch shift is drawn from U(-5, 5) (upstream)
MIN_LOG10_GAIN = -1.0  # the gain is 10 ** U(-1, min(1, log10(1 / peak))) (upstream)
MAX_LOG10_GAIN = 1.0
PEAK_EPS = 1e-5  # added to the clip's peak before log10 (upstream)
MEL_FRAME_SLACK = 1  # a cached mel may differ from N // hop frames by this much
DIFF_KINDS = ("mel", "aug_mel", "aug_key", "aug_vol")
AUG_KINDS = ("aug_mel", "aug_key", "aug_vol")  # one random draw: recomputed together

# audio [1, N] float32 at 44.1 kHz, keyshift (semitones) -> log-mel [1, T, M]
MelFn = Callable[[torch.Tensor, float], torch.Tensor]


def diff_cache_paths(clip: Path) -> dict[str, Path]:
    """Names of the diffusion cache files of clip X.wav (upstream's, plus X.wav.aug_key.npy)."""
    return {kind: Path(f"{clip}.{kind}.npy") for kind in DIFF_KINDS}


@dataclass(frozen=True)
class Augmentation:
    """The pitch/volume augmentation of one clip."""

    keyshift: float  # semitones
    log10_gain: float

    @property
    def gain(self) -> float:
        return 10.0 ** self.log10_gain

    def to_array(self) -> np.ndarray:
        return np.array([self.keyshift, self.log10_gain], dtype=np.float32)


def draw_augmentation(clip: Path, peak: float, seed: int = 0) -> Augmentation:
    """Upstream's draw for a clip whose sample peak is `peak`, seeded by `seed` and the clip's name inside its
    speaker folder ("<speaker>/<clip>.wav")."""
    rng = np.random.default_rng([zlib.crc32(f"{clip.parent.name}/{clip.name}".encode("utf-8")), seed])
    high = min(MAX_LOG10_GAIN, math.log10(1.0 / (peak + PEAK_EPS)))
    log10_gain = float(rng.uniform(MIN_LOG10_GAIN, max(high, MIN_LOG10_GAIN)))
    keyshift = float(rng.uniform(-MAX_KEYSHIFT, MAX_KEYSHIFT))
    return Augmentation(keyshift, log10_gain)


def read_augmentation(path: Path) -> Augmentation:
    """The (keyshift, log10 gain) of an X.wav.aug_key.npy file (plain float array, never unpickled)."""
    arr = np.load(path, allow_pickle=False)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"'{path}' must hold 2 finite numbers (keyshift, log10 gain), not shape {list(arr.shape)}")
    return Augmentation(float(arr[0]), float(arr[1]))


def _mel_ok(value: np.ndarray, frames: int, n_mels: int) -> bool:
    return (value.dtype == np.float32 and value.ndim == 2 and value.shape[1] == n_mels
            and abs(value.shape[0] - frames) <= MEL_FRAME_SLACK and bool(np.isfinite(value).all()))


def is_valid_diff(kind: str, path: Path, clip: Path, n_samples: int, n_mels: int) -> bool:
    """True when `path` exists, is not older than `clip`, loads without pickle and has the right shape."""
    try:
        if path.stat().st_mtime_ns < clip.stat().st_mtime_ns:
            return False
        value = np.load(path, allow_pickle=False)  # upstream's pickled aug_mel fails here: recomputed
    except Exception:  # missing, truncated, pickled, ...
        return False
    frames = n_samples // HOP_LENGTH
    if kind in ("mel", "aug_mel"):
        return _mel_ok(value, frames, n_mels)
    if kind == "aug_key":
        return value.dtype == np.float32 and value.shape == (2,) and bool(np.isfinite(value).all())
    return value.dtype == np.float32 and value.shape == (frames,)


def compute_diff_features(kinds: list[str], clip: Path, wav: torch.Tensor, mel_fn: MelFn, seed: int = 0
                          ) -> dict[str, np.ndarray]:
    """The arrays of `kinds` for the clip `wav` (float32 [N] at 44.1 kHz); `mel_fn` is the vocoder's mel."""
    from ..features import frame_volume

    out: dict[str, np.ndarray] = {}
    audio = wav.float()[None]
    if "mel" in kinds:
        out["mel"] = _as_frames(mel_fn(audio, 0.0))
    if any(k in kinds for k in AUG_KINDS):
        aug = draw_augmentation(clip, float(audio.abs().max()), seed)
        louder = audio * aug.gain
        out["aug_mel"] = _as_frames(mel_fn(louder, aug.keyshift))
        out["aug_key"] = aug.to_array()
        out["aug_vol"] = frame_volume(louder[0]).numpy().astype(np.float32)
    return out


def _as_frames(mel: torch.Tensor) -> np.ndarray:
    """[1, T, M] tensor -> float32 [T, M] array."""
    return mel.detach().float().cpu()[0].numpy().astype(np.float32)


@dataclass(frozen=True)
class MelExtraction:
    """The vocoder mel the diffusion caches hold: `extract` (see MelFn), its bin count and an identity (the
    manifest records it; another vocoder's mel settings recompute the mel caches)."""

    extract: MelFn
    n_mels: int
    key: str


@functools.lru_cache(maxsize=4)
def mel_extraction(vocoder: str | None, device: str = "cpu") -> MelExtraction:
    """The mel of the NSF-HiFiGAN at `vocoder` (file or folder with its config.json; only the STFT / mel settings
    matter, so its kind is irrelevant), or openvpi nsf_hifigan's default settings (44.1 kHz, 128 bins, n_fft 2048,
    hop 512, 40-16000 Hz) when None."""
    from ..vocoders.mel import MelExtractor, MelSettings

    if vocoder:
        from ..vocoders import load_mel_vocoder

        settings = load_mel_vocoder(vocoder, device="cpu").settings
        name = "vocoder"
    else:
        settings, name = MelSettings(), "default"
    mel = MelExtractor(settings)
    key = ":".join(str(v) for v in (name, settings.sample_rate, settings.n_mels, settings.n_fft, settings.win_size,
                                    settings.hop_size, settings.fmin, settings.fmax))

    def extract(audio: torch.Tensor, keyshift: float) -> torch.Tensor:
        if settings.sample_rate != MODEL_SAMPLE_RATE:
            raise ValueError(f"the vocoder's mel is at {settings.sample_rate} Hz; clips are {MODEL_SAMPLE_RATE} Hz")
        with torch.no_grad():
            return mel(audio.to(device), keyshift).transpose(1, 2)

    return MelExtraction(extract, int(settings.n_mels), key)
