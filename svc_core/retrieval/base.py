"""The one interface for cluster (k-means) and feature-retrieval (faiss) files: `Retriever.mix`."""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from typing import Hashable

import numpy as np

from ..errors import ModelError, OptionError, SpeakerError


class Retriever(ABC):
    """Pulls content features towards a speaker's training features: c <- r * retrieved(c) + (1 - r) * c.

    Attributes: `kind` ("kmeans", "faiss" or "faiss_single"), `dim` (feature size C), `speakers` (the names or
    ids the file holds; empty when one index serves every speaker), `path`.
    """

    kind: str = ""
    noun: str = "retrieval file"  # how error messages name the file

    def __init__(self, path: str, dim: int, speakers: tuple[Hashable, ...]) -> None:
        self.path = path
        self.dim = dim
        self.speakers = speakers

    def check_dim(self, dim: int, encoder: str | None = None) -> None:
        """Raise ModelError unless the model's features are `dim`-dimensional like the file's."""
        if dim != self.dim:
            uses = f"{dim}-dim {encoder} features" if encoder else f"{dim}-dim features"
            raise ModelError(
                f"This {self.noun} holds {self.dim}-dim features; the model uses {uses}. "
                "It was built for a model with a different speech encoder: pick the file trained with this model."
            )

    def mix(self, features: np.ndarray, speaker_name: str, speaker_id: int, ratio: float) -> np.ndarray:
        """features: [T, C] float32 content frames. Returns [T, C] float32; ratio 0 returns `features` itself."""
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0.0 <= float(ratio) <= 1.0:
            raise OptionError(f"The cluster/retrieval ratio must be between 0 and 1, got {ratio!r}.")
        ratio = float(ratio)
        if ratio == 0:
            return features
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"features must be [T, C], got shape {features.shape}")
        self.check_dim(features.shape[1])
        key = self._speaker_key(speaker_name, speaker_id)
        feats = np.ascontiguousarray(features, dtype=np.float32)
        if feats.shape[0] == 0:
            return feats
        retrieved = self._retrieve(feats, key)
        return (ratio * retrieved + (1 - ratio) * feats).astype(np.float32, copy=False)

    @abstractmethod
    def _speaker_key(self, speaker_name: str, speaker_id: int) -> Hashable:
        """The key of this speaker's entry in the file; SpeakerError when absent."""

    @abstractmethod
    def _retrieve(self, features: np.ndarray, key: Hashable) -> np.ndarray:
        """[T, C] float32 replacement features for `features` [T, C] from speaker entry `key`."""

    def _missing_speaker(self, wanted: Hashable, what: str) -> SpeakerError:
        have = ", ".join(str(s) for s in self.speakers) or "none"
        return SpeakerError(f"The {self.noun} '{self.path}' has no {what} {wanted!r}; it has: {have}.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, dim={self.dim}, speakers={self.speakers!r})"
