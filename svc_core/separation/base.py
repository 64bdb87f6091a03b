"""What every separator is: a song [C, N] in, named stems [C, N] out, run over overlapping chunks.

A backend (DSP baseline, our small network, a community model through its library) subclasses `Separator` and
implements `separate_chunk`; `Separator.separate` resamples to the backend's rate, runs the chunks through
`chunks.run_chunked` (crossfaded, memory flat in the song's length, progress and cancellation per chunk) and
resamples the stems back.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import AudioError

VOCALS = "vocals"
ACCOMPANIMENT = "accompaniment"
SEPARATION_SAMPLE_RATE = 44100  # Hz; the rate of every community model listed in docs/covers.md
MAX_SONG_CHANNELS = 2  # mono is taken as two equal channels; more channels are refused (see song_channels)

# progress(done_chunks, total_chunks): called after each chunk on the separating thread
ChunkProgress = Callable[[int, int], None]


@dataclass
class Stems:
    """A separation's result. Every array float32 [C, N] at `sample_rate` Hz, N and C equal to the input's."""

    vocals: np.ndarray
    accompaniment: np.ndarray
    sample_rate: int
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "lead_vocals", "backing_vocals", "drums"
    separator: str = ""  # label of the separator that made them

    @property
    def seconds(self) -> float:
        return self.vocals.shape[-1] / self.sample_rate


def song_channels(audio: np.ndarray, name: str = "song") -> np.ndarray:
    """[N] or [C, N] (C <= 2) -> float32 [2, N]; mono is duplicated. More channels: AudioError naming the count."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise AudioError(f"The {name} must be [samples] or [channels, samples]; got shape {audio.shape}.")
    if audio.shape[0] > MAX_SONG_CHANNELS:
        raise AudioError(f"The {name} has {audio.shape[0]} channels; covers take mono or stereo songs. Downmix it to "
                         "stereo first (e.g. ffmpeg -i in -ac 2 out.wav).")
    return np.ascontiguousarray(np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio)


class Separator(ABC):
    """One separation backend. Subclasses set the class attributes and implement `separate_chunk`."""

    name: str = ""  # registry key
    sample_rate: int = SEPARATION_SAMPLE_RATE  # Hz the backend runs at
    chunk_seconds: float = 30.0  # length of one chunk given to separate_chunk
    overlap_seconds: float = 2.0  # crossfade between neighbouring chunks
    stems: tuple[str, ...] = (VOCALS, ACCOMPANIMENT)  # names separate_chunk returns

    @property
    def label(self) -> str:
        """Human name shown in menus and logs."""
        return self.name

    @abstractmethod
    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """audio: float32 [2, T] at self.sample_rate -> {stem: float32 [2, T]} (at least vocals and accompaniment)."""

    def separate(self, audio: np.ndarray, sample_rate: int, progress: Optional[ChunkProgress] = None) -> Stems:
        """A whole song float32 [C, N] (C 1 or 2) at `sample_rate` -> Stems [2, N] at the same rate.

        Chunked and crossfaded (chunks.run_chunked); calls cancel.checkpoint("separation", fraction) per chunk.
        """
        from ..audio import resample
        from .chunks import run_chunked

        audio = song_channels(audio)
        n = audio.shape[1]
        x = audio if sample_rate == self.sample_rate else np.stack([resample(c, sample_rate, self.sample_rate)
                                                                    for c in audio])
        out = run_chunked(self.separate_chunk, x, int(round(self.chunk_seconds * self.sample_rate)),
                          int(round(self.overlap_seconds * self.sample_rate)), progress)

        def back(y: np.ndarray) -> np.ndarray:
            if sample_rate != self.sample_rate:
                y = np.stack([resample(c, self.sample_rate, sample_rate) for c in y])
            y = y[:, :n]
            return np.pad(y, ((0, 0), (0, n - y.shape[1]))) if y.shape[1] < n else y

        stems = {k: back(v) for k, v in out.items()}
        return Stems(stems.pop(VOCALS), stems.pop(ACCOMPANIMENT), sample_rate, stems, self.label)
