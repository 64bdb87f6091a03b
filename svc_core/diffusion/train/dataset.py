"""Diffusion training data: a preprocessed dataset (`preprocess --use-diff`) as crops of mel, units, f0 and volume.

Per clip X.wav of a filelist (svc_core.train.dataset's layout plus svc_core.preprocess.diffcache's files):
X.wav.mel.npy [T, M], X.wav.aug_mel.npy [T, M] + X.wav.aug_key.npy (keyshift, log10 gain), X.wav.vol.npy [T],
X.wav.aug_vol.npy [T], X.wav.f0.npy [2, T], X.wav.soft.pt [1, C, T_c] (stretched to T with the yaml's
unit_interpolate_mode). Nothing is unpickled (upstream's pickled aug_mel files are reported, see diffcache).

An item, as upstream's AudioDataset: a random `duration`-second crop (validation: the whole clip); with
augmentation on, half the items use the augmented mel and volume with f0 * 2^(keyshift / 12) and aug_shift =
keyshift, the others the plain ones with aug_shift 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ...features import stretch_units
from ...preprocess.diffcache import diff_cache_paths, read_augmentation
from ...safe_load import load_torch
from ...train.dataset import DatasetError, load_f0, read_filelist
from ..config import DiffusionConfig

CROP_MARGIN_S = 0.1  # seconds: a crop starts at most duration - crop - margin into the clip (upstream)
MAX_LENGTH_MISMATCH = 3  # frames of disagreement between the caches tolerated (trimmed to the shortest)
SEMITONES_PER_OCTAVE = 12.0
REQUIRED = ("soft", "f0", "vol", "mel", "aug_mel", "aug_key", "aug_vol")
PREPROCESS_HINT = "run `python -m svc_core preprocess --use-diff` on the dataset"


def clip_files(wav: Path) -> dict[str, Path]:
    """Every cache file a diffusion training clip needs."""
    return {"soft": Path(f"{wav}.soft.pt"), "f0": Path(f"{wav}.f0.npy"), "vol": Path(f"{wav}.vol.npy"),
            **diff_cache_paths(wav)}


@dataclass
class ClipData:
    """One clip's arrays (frames T on the 512-sample grid)."""

    mel: torch.Tensor  # [T, M] natural-log mel
    aug_mel: torch.Tensor  # [T, M]
    units: torch.Tensor  # [T, C]
    f0: torch.Tensor  # [T, 1] Hz
    volume: torch.Tensor  # [T, 1]
    aug_volume: torch.Tensor  # [T, 1]
    keyshift: float  # semitones of aug_mel


def _npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DatasetError(f"'{path}' is an upstream so-vits-svc {what} (a pickled object array), which is never "
                               f"opened here; {PREPROCESS_HINT} to rewrite it as a plain array.") from None
        raise DatasetError(f"'{path}' is not a readable .npy file ({err}); {PREPROCESS_HINT}.") from None
    except OSError as err:
        raise DatasetError(f"'{path}' cannot be read ({err}); {PREPROCESS_HINT}.") from None


def _frames(arr: np.ndarray, path: Path, width: int | None, what: str) -> torch.Tensor:
    """A float [T] (width None) or [T, width] array -> float32 tensor [T, 1] / [T, width]; DatasetError else."""
    arr = np.asarray(arr)
    ok = arr.ndim == 1 if width is None else (arr.ndim == 2 and arr.shape[1] == width)
    if not ok or not np.issubdtype(arr.dtype, np.floating):
        want = "[frames]" if width is None else f"[frames, {width}]"
        raise DatasetError(f"'{path}' ({what}) has shape {list(arr.shape)} {arr.dtype}; expected float {want}. "
                           f"The caches do not fit this model: {PREPROCESS_HINT}.")
    t = torch.from_numpy(arr.astype(np.float32))
    return t[:, None] if width is None else t


def load_clip(wav: Path, config: DiffusionConfig, n_mels: int) -> ClipData:
    """Read and check every cache of `wav`; lengths trimmed to the shortest (DatasetError beyond a few frames)."""
    files = clip_files(wav)
    mel = _frames(_npy(files["mel"], "mel"), files["mel"], n_mels, f"{n_mels}-bin vocoder mel")
    aug_mel = _frames(_npy(files["aug_mel"], "aug_mel cache"), files["aug_mel"], n_mels, "augmented mel")
    try:
        keyshift = read_augmentation(files["aug_key"]).keyshift
    except (ValueError, OSError) as err:
        raise DatasetError(f"{err}; {PREPROCESS_HINT}.") from None
    f0_np, _ = load_f0(files["f0"])
    f0 = torch.from_numpy(f0_np.astype(np.float32))[:, None]
    volume = _frames(_npy(files["vol"], "volume"), files["vol"], None, "volume")
    aug_volume = _frames(_npy(files["aug_vol"], "augmented volume"), files["aug_vol"], None, "augmented volume")
    units = load_torch(files["soft"], what="content features")
    if not isinstance(units, torch.Tensor) or units.dim() not in (2, 3):
        raise DatasetError(f"'{files['soft']}' should hold one [1, C, frames] tensor; {PREPROCESS_HINT}.")
    units = units.float().reshape(-1, units.shape[-1]) if units.dim() == 3 else units.float()
    if units.shape[0] != config.encoder_out_channels:
        raise DatasetError(f"'{files['soft']}' holds {units.shape[0]}-dim units but the diffusion yaml's encoder "
                           f"{config.encoder!r} gives {config.encoder_out_channels}; preprocess with that encoder or "
                           "fix data.encoder / data.encoder_out_channels.")
    units = stretch_units(units, f0.shape[0], config.unit_interpolate_mode).transpose(0, 1)  # [T, C]
    parts = {"mel": mel, "aug_mel": aug_mel, "units": units, "f0": f0, "volume": volume, "aug_volume": aug_volume}
    lengths = {k: v.shape[0] for k, v in parts.items()}
    if max(lengths.values()) - min(lengths.values()) > MAX_LENGTH_MISMATCH:
        raise DatasetError(f"'{wav}': the caches disagree on the frame count ({lengths}); they are out of date, "
                           f"{PREPROCESS_HINT} again.")
    n = min(lengths.values())
    return ClipData(**{k: v[:n].contiguous() for k, v in parts.items()}, keyshift=keyshift)


def _half(clip: ClipData) -> ClipData:
    """The two big arrays of a cached clip in float16 (cache_fp16)."""
    return ClipData(clip.mel.half(), clip.aug_mel.half(), clip.units.half(), clip.f0, clip.volume, clip.aug_volume,
                    clip.keyshift)


def filelist_path(data_dir: Path, config: DiffusionConfig, split: str) -> Path:
    """The yaml's training_files / validation_files (absolute, or under the dataset), else filelists/<split>.txt."""
    key = "training_files" if split == "train" else "validation_files"
    written = (config.doc.get("data") or {}).get(key)
    if written:
        path = Path(written)
        path = path if path.is_absolute() else data_dir / path
        if path.is_file():
            return path
    return data_dir / "filelists" / f"{split}.txt"


class DiffDataset(Dataset):
    """Items: dict(mel [F, M], f0 [F, 1] Hz, volume [F, 1], units [F, C], spk_id [1] long, aug_shift [1, 1]
    semitones, name). `crop_seconds` None = whole clips (validation); clips too short for the crop are left out
    and listed in `.skipped`."""

    def __init__(self, data_dir: str | os.PathLike, config: DiffusionConfig, split: str = "train",
                 crop_seconds: float | None = 2.0, use_aug: bool = True, n_mels: int = 128, cache: bool = True,
                 cache_fp16: bool = False) -> None:
        self.data_dir, self.config, self.n_mels = Path(data_dir), config, n_mels
        self.crop_seconds, self.use_aug, self.cache_fp16 = crop_seconds, use_aug, cache_fp16
        self.frame_seconds = config.block_size / config.sampling_rate
        listed = filelist_path(self.data_dir, config, split)
        self.files: list[Path] = []
        self.durations: list[float] = []
        self.skipped: list[tuple[str, str]] = []
        missing: list[str] = []
        for wav in read_filelist(listed, self.data_dir):
            absent = [str(p) for p in clip_files(wav).values() if not p.is_file()]
            if absent:
                missing.extend(absent)
                continue
            self._speaker_id(wav)
            info = sf.info(str(wav))
            duration = info.frames / info.samplerate
            if crop_seconds is not None and duration < crop_seconds + CROP_MARGIN_S:
                self.skipped.append((str(wav), f"{duration:.2f} s < {crop_seconds + CROP_MARGIN_S:.2f} s"))
                continue
            self.files.append(wav)
            self.durations.append(duration)
        if missing:
            raise DatasetError(f"{len(missing)} diffusion cache file(s) are missing, e.g. {missing[:3]}; "
                               f"{PREPROCESS_HINT}.")
        if not self.files:
            why = (f": all {len(self.skipped)} are shorter than the {crop_seconds:g} s training crop plus "
                   f"{CROP_MARGIN_S} s; lower data.duration (--duration) or use longer clips"
                   if self.skipped else "")
            raise DatasetError(f"No usable clips in {listed}{why}.")
        self._cache: dict[int, ClipData] = {}
        if cache:
            for i in range(len(self.files)):
                self._cache[i] = self._read(i)

    def _speaker_id(self, wav: Path) -> int:
        speaker = wav.parent.name
        if speaker in self.config.speakers:
            return self.config.speakers[speaker]
        if self.config.n_spk == 1 and len(self.config.speakers) <= 1:
            return 0
        raise DatasetError(f"Clip '{wav}' is in speaker folder '{speaker}', which the diffusion yaml's spk map does "
                           f"not name (it has {', '.join(self.config.speakers) or 'none'}); add it to spk (and "
                           "model.n_spk) or preprocess the dataset again.")

    def _read(self, index: int) -> ClipData:
        clip = load_clip(self.files[index], self.config, self.n_mels)
        return _half(clip) if self.cache_fp16 else clip

    def __len__(self) -> int:
        return len(self.files)

    def clip(self, index: int) -> ClipData:
        return self._cache[index] if index in self._cache else self._read(index)

    def __getitem__(self, index: int) -> dict:
        wav, data = self.files[index], self.clip(index)
        n = data.mel.shape[0]
        start, length = 0, n
        if self.crop_seconds is not None:
            length = min(n, int(self.crop_seconds / self.frame_seconds))
            latest = self.durations[index] - self.crop_seconds - CROP_MARGIN_S
            start_s = float(torch.rand(())) * max(latest, 0.0)
            start = min(int(start_s / self.frame_seconds), n - length)
        aug = self.use_aug and bool(torch.rand(()) < 0.5)
        shift = data.keyshift if aug else 0.0
        window = slice(start, start + length)
        mel = (data.aug_mel if aug else data.mel)[window].float()
        volume = (data.aug_volume if aug else data.volume)[window]
        f0 = data.f0[window] * 2.0 ** (shift / SEMITONES_PER_OCTAVE)
        return {"mel": mel, "f0": f0, "volume": volume, "units": data.units[window].float(),
                "spk_id": torch.tensor([self._speaker_id(wav)], dtype=torch.long),
                "aug_shift": torch.tensor([[shift]], dtype=torch.float32),
                "name": f"{wav.parent.name}/{wav.name}"}
