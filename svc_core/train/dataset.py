"""Training data: the preprocessed dataset folder (see DATASET LAYOUT) as a torch Dataset, plus batch collation.

DATASET LAYOUT (written by svc_core.preprocess)::

    <data>/config.json                      upstream layout (svc_core.config.load_config)
    <data>/filelists/train.txt, val.txt     one wav path per line (absolute, or relative to <data> or the cwd)
    <data>/<speaker>/<clip>.wav             44.1 kHz mono 16-bit
    <data>/<speaker>/<clip>.wav.soft.pt     content features, torch tensor [1, C, T_c] at 50 fps
    <data>/<speaker>/<clip>.wav.f0.npy      float32 [2, T]: interpolated f0 (Hz), uv (plain .npy, no pickle)
    <data>/<speaker>/<clip>.spec.pt         linear magnitude [1025, T] (svc_core.train.mel.linear_spectrogram)
    <data>/<speaker>/<clip>.wav.vol.npy     float32 [T] loudness (only for vol_embedding models)

Every file is read without executing code: tensors through svc_core.safe_load.load_torch, .npy with
allow_pickle=False (upstream's pickled .f0.npy caches are reported, never opened).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ..config import SvcConfig
from ..errors import SvcError
from ..features import stretch_units
from ..safe_load import load_torch
from .mel import linear_spectrogram

CROP_ABOVE = 800  # frames: longer clips are randomly cropped (upstream hard-codes these two numbers)
CROP_TO = 790  # frames kept from a cropped clip
MAX_LENGTH_MISMATCH = 3  # frames of disagreement between f0/content and spectrogram tolerated (as upstream)


class DatasetError(SvcError):
    """The dataset folder is missing files or holds files the trainer cannot use."""


def side_files(wav: Path) -> dict[str, Path]:
    """The cache files preprocessing writes next to `wav`."""
    return {"soft": Path(f"{wav}.soft.pt"), "f0": Path(f"{wav}.f0.npy"),
            "spec": wav.with_name(wav.name[:-4] + ".spec.pt") if wav.name.endswith(".wav") else Path(f"{wav}.spec.pt"),
            "vol": Path(f"{wav}.vol.npy")}


def resolve_entry(line: str, data_dir: Path) -> Path:
    """A filelist line -> an existing wav path (tried as given, under <data>, then as <data>/<speaker>/<file>)."""
    raw = Path(line.strip())
    candidates = [raw] if raw.is_absolute() else [data_dir / raw, Path.cwd() / raw]
    if len(raw.parts) >= 2:
        candidates.append(data_dir / raw.parts[-2] / raw.parts[-1])
    for cand in candidates:
        if cand.is_file():
            return cand
    raise DatasetError(f"The filelist entry '{line.strip()}' does not exist (looked in {data_dir} and the current "
                       "folder). Re-run preprocessing so the filelists match the files.")


def read_filelist(path: Path, data_dir: Path) -> list[Path]:
    if not path.is_file():
        raise DatasetError(f"Filelist '{path}' is missing; preprocessing writes filelists/train.txt and val.txt.")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return [resolve_entry(ln, data_dir) for ln in lines]


def load_f0(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz [T], uv [T]) from a plain float .f0.npy; DatasetError for upstream's pickled object arrays."""
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DatasetError(
                f"'{path}' is an upstream so-vits-svc f0 cache (a pickled object array). Pickled files are never "
                "opened here; delete the dataset's *.f0.npy files and re-run preprocessing to regenerate them."
            ) from None
        raise DatasetError(f"'{path}' is not a readable .npy file: {err}") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != 2:
        raise DatasetError(f"'{path}' must hold a [2, frames] array (f0, uv); it has shape {list(arr.shape)}.")
    return arr[0], arr[1]


def _load_tensor(path: Path, what: str) -> torch.Tensor:
    obj = load_torch(path, what=what)
    if not isinstance(obj, torch.Tensor):
        raise DatasetError(f"'{path}' should hold a single tensor ({what}) but holds a {type(obj).__name__}.")
    return obj.float()


class SvcDataset(Dataset):
    """One item per clip of a filelist: a dict with c [S, T], f0 [T], uv [T], spec [F, T], wav [1, T*hop],
    spk (int), vol [T] or None, name (str). Clips shorter than `min_frames` are left out (listed in .skipped)."""

    def __init__(self, data_dir: str | os.PathLike, config: SvcConfig, split: str = "train",
                 random_crop: bool = True, min_frames: int = 0, vol_aug: bool = False,
                 crop_frames: int = CROP_TO) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.random_crop = random_crop
        # upstream: clips over 800 frames -> a random 790; a shorter window trains faster on CPU
        self.crop_above, self.crop_to = (CROP_ABOVE, CROP_TO) if crop_frames >= CROP_TO else (crop_frames,
                                                                                               crop_frames)
        self.vol_aug = vol_aug and config.model.vol_embedding
        self.hop = config.hop_length
        data = config.raw.get("data", {})
        key = "training_files" if split == "train" else "validation_files" if split == "val" else None
        rel = Path(data.get(key) or f"filelists/{split}.txt") if key else Path(split)
        listed = self.data_dir / rel if not rel.is_absolute() else rel
        if not listed.is_file():  # configs written elsewhere may carry paths that do not exist here
            listed = self.data_dir / "filelists" / f"{split}.txt"
        self.files: list[Path] = []
        self.skipped: list[tuple[str, str]] = []
        missing: list[str] = []
        for wav in read_filelist(listed, self.data_dir):
            need = ["soft", "f0", "spec"] + (["vol"] if config.model.vol_embedding else [])
            absent = [str(side_files(wav)[k]) for k in need if not side_files(wav)[k].is_file()]
            if absent:
                missing.extend(absent)
                continue
            speaker = wav.parent.name
            if speaker not in config.spk:
                raise DatasetError(f"Clip '{wav}' is in speaker folder '{speaker}', which config.json's spk map "
                                   f"does not name (it has {config.describe_speakers()}).")
            frames = sf.info(str(wav)).frames // self.hop
            if frames < min_frames:
                self.skipped.append((str(wav), f"{frames} frames < {min_frames}"))
                continue
            self.files.append(wav)
        if missing:
            raise DatasetError(f"{len(missing)} preprocessed feature file(s) are missing, e.g. {missing[:3]}; run "
                               "preprocessing (content features, f0, spectrograms"
                               + (", volume" if config.model.vol_embedding else "") + ") on the dataset first.")
        if not self.files:
            raise DatasetError(f"No usable clips in {listed}" + (f" ({len(self.skipped)} shorter than "
                               f"{min_frames} frames)" if self.skipped else "") + ".")

    def __len__(self) -> int:
        return len(self.files)

    def _read_audio(self, wav: Path) -> torch.Tensor:
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        if sr != self.config.sampling_rate:
            raise DatasetError(f"'{wav}' is {sr} Hz but the model rate is {self.config.sampling_rate} Hz; re-run "
                               "preprocessing (it resamples).")
        if audio.shape[1] != 1:
            raise DatasetError(f"'{wav}' has {audio.shape[1]} channels; training clips must be mono.")
        return torch.from_numpy(audio[:, 0].copy())[None]

    def __getitem__(self, index: int) -> dict:
        wav = self.files[index]
        files = side_files(wav)
        audio = self._read_audio(wav)
        spec = _load_tensor(files["spec"], "spectrogram")
        if spec.dim() == 3:
            spec = spec.squeeze(0)
        n_bins = self.config.filter_length // 2 + 1
        if spec.dim() != 2 or spec.shape[0] != n_bins:
            raise DatasetError(f"'{files['spec']}' has shape {list(spec.shape)}; expected [{n_bins}, frames].")
        f0_np, uv_np = load_f0(files["f0"])
        f0, uv = torch.from_numpy(f0_np.copy()), torch.from_numpy(uv_np.copy())
        units = _load_tensor(files["soft"], "content features")
        units = units.squeeze(0) if units.dim() == 3 else units
        if units.dim() != 2 or units.shape[0] != self.config.model.ssl_dim:
            raise DatasetError(f"'{files['soft']}' has shape {list(units.shape)}; this model needs "
                               f"{self.config.model.ssl_dim}-dim {self.config.speech_encoder} features [1, "
                               f"{self.config.model.ssl_dim}, frames]. Re-run preprocessing with that encoder.")
        c = stretch_units(units, f0.shape[0], self.config.unit_interpolate_mode)
        vol = None
        if self.config.model.vol_embedding:
            vol = torch.from_numpy(np.load(files["vol"], allow_pickle=False).astype(np.float32).reshape(-1))
        if abs(c.shape[-1] - spec.shape[-1]) >= MAX_LENGTH_MISMATCH:
            raise DatasetError(f"'{wav}': f0 has {c.shape[-1]} frames but the spectrogram {spec.shape[-1]}; the "
                               "caches are out of date, re-run preprocessing.")
        n = min(c.shape[-1], spec.shape[-1], audio.shape[-1] // self.hop)
        n = min(n, vol.shape[0]) if vol is not None else n
        spec, c, f0, uv = spec[:, :n], c[:, :n], f0[:n], uv[:n]
        audio = audio[:, : n * self.hop]
        vol = vol[:n] if vol is not None else None
        if self.random_crop and n > self.crop_above:
            start = int(torch.randint(0, n - self.crop_above + 1, ()))
            end = start + self.crop_to
            spec, c, f0, uv = spec[:, start:end], c[:, start:end], f0[start:end], uv[start:end]
            audio = audio[:, start * self.hop:end * self.hop]
            vol = vol[start:end] if vol is not None else None
        if self.vol_aug and float(torch.rand(())) > 0.5:
            audio, spec, vol = self._gain(audio, spec, vol)
        return {"c": c, "f0": f0, "uv": uv, "spec": spec, "wav": audio, "vol": vol,
                "spk": self.config.spk[wav.parent.name], "name": f"{wav.parent.name}/{wav.name}"}

    def _gain(self, audio, spec, vol):
        """Upstream's vol_aug: a random gain 10^U(-1, min(1, log10(1/peak))) on audio and volume, spec redone."""
        peak = float(audio.abs().max()) + 1e-5
        shift = float(torch.empty(()).uniform_(-1.0, min(1.0, math.log10(1.0 / peak))))
        gain = 10.0 ** shift
        audio = audio * gain
        spec = linear_spectrogram(audio[0], self.config.filter_length, self.hop,
                                  self.config.win_length)[:, : spec.shape[-1]]
        return audio, spec, vol * gain if vol is not None else None


@dataclass
class Batch:
    """Padded batch, longest clip first (as upstream's collate)."""

    c: torch.Tensor  # [B, S, T]
    f0: torch.Tensor  # [B, T]
    spec: torch.Tensor  # [B, F, T]
    wav: torch.Tensor  # [B, 1, T * hop]
    spk: torch.Tensor  # [B, 1] long
    lengths: torch.Tensor  # [B] long, frames
    uv: torch.Tensor  # [B, T]
    vol: torch.Tensor | None  # [B, T]
    names: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device, non_blocking=True)
        return Batch(**moved)


def collate(items: list[dict]) -> Batch:
    """Zero-pad a list of dataset items to the longest one (frames and samples)."""
    items = sorted(items, key=lambda it: it["c"].shape[-1], reverse=True)
    b = len(items)
    t_max = items[0]["c"].shape[-1]
    n_max = max(it["wav"].shape[-1] for it in items)
    first = items[0]
    c = torch.zeros(b, first["c"].shape[0], t_max)
    spec = torch.zeros(b, first["spec"].shape[0], t_max)
    f0, uv = torch.zeros(b, t_max), torch.zeros(b, t_max)
    wav = torch.zeros(b, 1, n_max)
    vol = torch.zeros(b, t_max) if first["vol"] is not None else None
    lengths = torch.zeros(b, dtype=torch.long)
    spk = torch.zeros(b, 1, dtype=torch.long)
    for i, it in enumerate(items):
        t = it["c"].shape[-1]
        lengths[i] = t
        c[i, :, :t] = it["c"]
        spec[i, :, :t] = it["spec"]
        f0[i, :t] = it["f0"]
        uv[i, :t] = it["uv"]
        wav[i, :, : it["wav"].shape[-1]] = it["wav"]
        spk[i, 0] = it["spk"]
        if vol is not None:
            vol[i, :t] = it["vol"]
    return Batch(c, f0, spec, wav, spk, lengths, uv, vol, [it["name"] for it in items])
