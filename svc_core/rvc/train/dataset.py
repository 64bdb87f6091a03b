"""Training batches from an experiment's filelist.txt, as RVC's TextAudioLoaderMultiNSFsid / TextAudioCollate*:

item: phone [T, C] (content frames repeated twice: 50 -> 100 frames/s), pitch [T] long (coarse), pitchf [T] Hz,
spec [F, T] (linear magnitude, svc_core.features.linear_spectrogram with the model's FFT), wav [1, T * hop], sid.
Frames are cut to the shorter of content and spectrogram (RVC's steps), then to `max_frames`: RVC keeps the first
900 (which never cuts its 3.7 s pieces); a lower max_frames takes a random window of that many frames instead.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ...features import linear_spectrogram
from ...train.dataset import DatasetError
from .layout import ExperimentLayout, FilelistEntry

CONTENT_REPEAT = 2  # 50 frames/s content -> the synthesizer's 100 frames/s


class RvcDataset(Dataset):
    """The pieces of filelist.txt that are at least `min_frames` long (shorter ones are listed in .skipped)."""

    def __init__(self, layout: ExperimentLayout, sr: int, filter_length: int, hop_length: int, content_dim: int,
                 f0: bool, min_frames: int = 1, max_frames: int = 900) -> None:
        self.sr, self.n_fft, self.hop = sr, filter_length, hop_length
        self.content_dim, self.f0, self.max_frames = content_dim, f0, max_frames
        if not layout.filelist.is_file():
            raise DatasetError(f"'{layout.filelist}' is missing; prepare the experiment first "
                               "(`train --arch rvc` does it before training).")
        self.entries: list[FilelistEntry] = []
        self.skipped: list[tuple[str, str]] = []
        for n, line in enumerate(layout.filelist.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = FilelistEntry.parse(line, f0)
            except ValueError as err:
                raise DatasetError(f"{layout.filelist} line {n}: {err} (a {'pitch' if f0 else 'no-pitch'} model's "
                                   "filelist). Prepare the experiment again.") from None
            missing = [str(p) for p in (entry.wav, entry.feature, entry.coarse, entry.hz)
                       if p is not None and not p.is_file()]
            if missing:
                raise DatasetError(f"{layout.filelist} line {n} names missing files: {', '.join(missing[:2])}. "
                                   "Prepare the experiment again.")
            info = sf.info(str(entry.wav))
            if info.samplerate != sr:
                raise DatasetError(self._wrong_rate(entry.wav, info.samplerate))
            frames = info.frames // hop_length
            if frames < min_frames:
                self.skipped.append((entry.wav.name, f"{frames} frames < {min_frames}"))
                continue
            self.entries.append(entry)
        if not self.entries:
            raise DatasetError(f"No usable piece in {layout.filelist}" + (
                f" ({len(self.skipped)} shorter than the {min_frames}-frame training segment)" if self.skipped
                else "") + ".")

    def __len__(self) -> int:
        return len(self.entries)

    def _wrong_rate(self, path: Path, sr: int) -> str:
        return (f"'{path}' is {sr} Hz but this model trains at {self.sr} Hz; the experiment folder was prepared "
                "for another sample rate. Use a new --out folder.")

    def _audio(self, path: Path) -> torch.Tensor:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        if sr != self.sr:
            raise DatasetError(self._wrong_rate(path, sr))
        return torch.from_numpy(np.ascontiguousarray(audio[:, 0]))[None]

    def __getitem__(self, index: int) -> dict:
        e = self.entries[index]
        phone = np.load(e.feature, allow_pickle=False)
        if phone.ndim != 2 or phone.shape[1] != self.content_dim:
            raise DatasetError(f"'{e.feature}' has shape {list(phone.shape)}; this model needs [frames, "
                               f"{self.content_dim}] content features.")
        phone = torch.from_numpy(np.repeat(phone.astype(np.float32), CONTENT_REPEAT, axis=0))
        n = phone.shape[0]
        pitch = pitchf = None
        if self.f0:
            pitch = torch.from_numpy(np.load(e.coarse, allow_pickle=False).astype(np.int64))
            pitchf = torch.from_numpy(np.load(e.hz, allow_pickle=False).astype(np.float32))
            n = min(n, pitch.shape[0], pitchf.shape[0])
        wav = self._audio(e.wav)
        spec = linear_spectrogram(wav[0], self.n_fft, self.hop, self.n_fft)
        n = min(n, spec.shape[-1])
        a = int(torch.randint(0, n - self.max_frames + 1, ())) if n > self.max_frames else 0
        b = min(n, a + self.max_frames)
        item = {"phone": phone[a:b], "spec": spec[:, a:b], "wav": wav[:, a * self.hop: b * self.hop],
                "sid": e.sid, "name": e.wav.name}
        if self.f0:
            item["pitch"], item["pitchf"] = pitch[a:b], pitchf[a:b]
        return item


@dataclass
class RvcBatch:
    """Zero-padded batch, longest piece first (RVC's collate)."""

    phone: torch.Tensor  # [B, T, C]
    phone_lengths: torch.Tensor  # [B] long
    pitch: torch.Tensor | None  # [B, T] long
    pitchf: torch.Tensor | None  # [B, T] Hz
    spec: torch.Tensor  # [B, F, T]
    spec_lengths: torch.Tensor  # [B] long
    wav: torch.Tensor  # [B, 1, T * hop]
    sid: torch.Tensor  # [B] long
    names: list[str]

    def to(self, device: torch.device | str) -> "RvcBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return RvcBatch(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in moved.items()})


def collate(items: list[dict]) -> RvcBatch:
    items = sorted(items, key=lambda it: it["spec"].shape[-1], reverse=True)
    b, t = len(items), items[0]["spec"].shape[-1]
    n = max(it["wav"].shape[-1] for it in items)
    phone = torch.zeros(b, t, items[0]["phone"].shape[1])
    spec = torch.zeros(b, items[0]["spec"].shape[0], t)
    wav = torch.zeros(b, 1, n)
    f0 = "pitch" in items[0]
    pitch = torch.zeros(b, t, dtype=torch.long) if f0 else None
    pitchf = torch.zeros(b, t) if f0 else None
    lengths = torch.zeros(b, dtype=torch.long)
    sid = torch.zeros(b, dtype=torch.long)
    for i, it in enumerate(items):
        k = it["spec"].shape[-1]
        lengths[i] = k
        phone[i, :k] = it["phone"]
        spec[i, :, :k] = it["spec"]
        wav[i, :, : it["wav"].shape[-1]] = it["wav"]
        sid[i] = it["sid"]
        if f0:
            pitch[i, :k] = it["pitch"]
            pitchf[i, :k] = it["pitchf"]
    return RvcBatch(phone, lengths, pitch, pitchf, spec, lengths.clone(), wav, sid, [it["name"] for it in items])
