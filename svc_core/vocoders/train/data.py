"""Training data of the mel vocoder: the clips of a preprocessed dataset (svc_core.train.dataset's layout) with their
f0 caches; the mel is the vocoder's own (MelExtractor), computed once per clip and kept in memory.

Item: mel [M, S] (natural log), f0 [S] Hz (interpolated through unvoiced frames, what a conversion hands the
vocoder), uv [S] (1 = voiced), audio [S * hop] float32, for a random (train) or leading (val) window of S frames.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ...train.dataset import DatasetError, load_f0, read_filelist, side_files
from ..mel import MelExtractor

F0_FRAME_SLACK = 3  # frames of disagreement between the f0 cache and the audio tolerated (as the so-vits trainer)


class VocoderClips(Dataset):
    """Clips of `split` (filelists/{split}.txt) of a preprocessed dataset, `frames` per item (0 = whole clip,
    validation). Clips shorter than `frames` are left out (listed in .skipped)."""

    def __init__(self, data_dir: str | os.PathLike, split: str, mel: MelExtractor, frames: int,
                 random_crop: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.mel = mel
        self.frames = frames
        self.random_crop = random_crop
        self.sample_rate, self.hop = mel.settings.sample_rate, mel.settings.hop_size
        listed = self.data_dir / "filelists" / f"{split}.txt"
        self.files: list[Path] = []
        self.skipped: list[tuple[str, str]] = []
        missing = []
        for wav in read_filelist(listed, self.data_dir):
            if not side_files(wav)["f0"].is_file():
                missing.append(str(side_files(wav)["f0"]))
                continue
            info = sf.info(str(wav))
            if info.samplerate != self.sample_rate:
                raise DatasetError(f"'{wav}' is {info.samplerate} Hz but the vocoder works at {self.sample_rate} Hz; "
                                   "preprocess the dataset for a model of the vocoder's rate.")
            if info.frames // self.hop < frames:
                self.skipped.append((str(wav), f"{info.frames // self.hop} frames < {frames}"))
                continue
            self.files.append(wav)
        if missing:
            raise DatasetError(f"{len(missing)} f0 cache file(s) are missing, e.g. {missing[:3]}; run "
                               "`python -m svc_core preprocess` on the dataset first.")
        if not self.files:
            raise DatasetError(f"No usable clips in {listed}" + (f" ({len(self.skipped)} shorter than {frames} "
                               "frames)" if self.skipped else "") + ".")
        self._cache: dict[int, tuple[torch.Tensor, ...]] = {}

    def __len__(self) -> int:
        return len(self.files)

    def clip(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mel [M, T], f0 [T], uv [T], audio [T * hop]) of a whole clip (cached)."""
        if index not in self._cache:
            wav = self.files[index]
            audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
            if audio.shape[1] != 1:
                raise DatasetError(f"'{wav}' has {audio.shape[1]} channels; training clips must be mono.")
            audio_t = torch.from_numpy(audio[:, 0].copy())
            f0, uv = load_f0(side_files(wav)["f0"])
            n_audio = audio_t.shape[0] // self.hop
            if abs(len(f0) - n_audio) >= F0_FRAME_SLACK:
                raise DatasetError(f"'{wav}': the f0 cache has {len(f0)} frames but the audio {n_audio}; the caches "
                                   "are out of date, re-run preprocessing.")
            mel = self.mel(audio_t[None])[0]
            n = min(mel.shape[1], len(f0), n_audio)
            self._cache[index] = (mel[:, :n].contiguous(), torch.from_numpy(np.ascontiguousarray(f0[:n])),
                                  torch.from_numpy(np.ascontiguousarray(uv[:n])), audio_t[: n * self.hop])
        return self._cache[index]

    def name(self, index: int) -> str:
        wav = self.files[index]
        return f"{wav.parent.name}/{wav.name}"

    def __getitem__(self, index: int) -> dict:
        mel, f0, uv, audio = self.clip(index)
        n = mel.shape[1]
        size = n if self.frames <= 0 else min(self.frames, n)
        start = int(torch.randint(0, n - size + 1, ())) if self.random_crop else 0
        stop = start + size
        return {"mel": mel[:, start:stop], "f0": f0[start:stop], "uv": uv[start:stop],
                "audio": audio[start * self.hop:stop * self.hop], "name": self.name(index)}


def collate(items: list[dict]) -> dict:
    """Stack equal-length training items: mel [B, M, S], f0 [B, S], uv [B, S], audio [B, 1, S * hop]."""
    return {"mel": torch.stack([it["mel"] for it in items]), "f0": torch.stack([it["f0"] for it in items]),
            "uv": torch.stack([it["uv"] for it in items]),
            "audio": torch.stack([it["audio"] for it in items])[:, None], "names": [it["name"] for it in items]}
