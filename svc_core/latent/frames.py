"""`FrameSet`: content-embedding frames [N, C] with one row of labels per frame (speaker, source, phone, pitch,
time, clip), kept as plain numpy arrays so a set saves to .npz and loads back without pickle."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable, Mapping

import numpy as np

# what a frame is: a training clip's, the input clip's, its conversion re-encoded, a k-means centre, an index row
SOURCES = ("training", "input", "converted", "centre", "index")
LABEL_FIELDS = ("speaker", "source", "phone", "pitch_hz", "time_s", "clip")
SILENCE = "sil"  # phone label of frames too quiet to name a phone
UNKNOWN = ""  # phone / clip label where there is none (centres, index rows)


@dataclass
class FrameSet:
    """N frames: `features` [N, C] float32 and per-frame labels, each [N]:
    speaker / source / phone / clip (str), pitch_hz (float32, Hz; 0 = unvoiced, NaN = unknown) and time_s
    (float32, seconds from the clip's start at 50 frames/s; NaN for centres and index rows)."""

    features: np.ndarray
    speaker: np.ndarray
    source: np.ndarray
    phone: np.ndarray
    pitch_hz: np.ndarray
    time_s: np.ndarray
    clip: np.ndarray

    def __post_init__(self) -> None:
        self.features = np.ascontiguousarray(self.features, dtype=np.float32)
        if self.features.ndim != 2:
            raise ValueError(f"features must be [N, C], got shape {self.features.shape}")
        n = self.features.shape[0]
        for name in ("speaker", "source", "phone", "clip"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=str).reshape(-1))
        for name in ("pitch_hz", "time_s"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32).reshape(-1))
        bad = [name for name in LABEL_FIELDS if getattr(self, name).shape[0] != n]
        if bad:
            raise ValueError(f"labels {bad} do not have one entry per frame ({n})")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @classmethod
    def empty(cls, dim: int) -> "FrameSet":
        return cls(np.zeros((0, dim), np.float32), [], [], [], [], [], [])

    @classmethod
    def uniform(cls, features: np.ndarray, speaker: str, source: str, clip: str = UNKNOWN,
                phone: np.ndarray | None = None, pitch_hz: np.ndarray | None = None,
                time_s: np.ndarray | None = None) -> "FrameSet":
        """Frames sharing one speaker, source and clip; missing per-frame labels become unknown."""
        n = len(features)
        nan = np.full(n, np.nan, np.float32)
        return cls(features, np.full(n, speaker), np.full(n, source), np.full(n, UNKNOWN) if phone is None else phone,
                   nan if pitch_hz is None else pitch_hz, nan if time_s is None else time_s, np.full(n, clip))

    @classmethod
    def concat(cls, sets: Iterable["FrameSet"]) -> "FrameSet":
        sets = [s for s in sets if s is not None]
        if not sets:
            raise ValueError("nothing to concatenate")
        dims = {s.dim for s in sets}
        if len(dims) != 1:
            raise ValueError(f"frame sets of different widths {sorted(dims)}")
        return cls(**{f.name: np.concatenate([getattr(s, f.name) for s in sets]) for f in fields(cls)})

    def take(self, index: np.ndarray) -> "FrameSet":
        return FrameSet(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def subsample(self, max_frames: int, seed: int = 0) -> "FrameSet":
        """At most `max_frames` frames, picked uniformly at random with `seed`, kept in their original order."""
        if max_frames <= 0 or len(self) <= max_frames:
            return self
        pick = np.sort(np.random.default_rng(seed).choice(len(self), size=max_frames, replace=False))
        return self.take(pick)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Plain arrays (str arrays are fixed-width unicode: np.savez writes them without pickle)."""
        return {prefix + f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "FrameSet":
        return cls(**{f.name: np.asarray(arrays[prefix + f.name]) for f in fields(cls)})
