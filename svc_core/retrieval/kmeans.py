"""K-means cluster files (`kmeans_10000.pt`, spec e.1): load, nearest-centre lookup, train and save.

File layout (torch.save): {speaker_name: {"n_features_in_": C, "_n_threads": int,
"cluster_centers_": np.float32 [K, C]}}. No sklearn object is needed to use it: predict = nearest centre.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ModelError, OptionError
from ..safe_load import load_torch
from .base import Retriever

CENTERS_KEY = "cluster_centers_"
N_FEATURES_KEY = "n_features_in_"
N_THREADS_KEY = "_n_threads"
DISTANCE_BLOCK_ELEMENTS = 1 << 22  # frames x centres per distance block (16 MB of float32)


def nearest_centers(features: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the Euclidean-nearest centre for each frame.

    features: [T, C] float32, centers: [K, C] float32. Returns [T] int64. Distances are computed in blocks of
    frames so that the [block, K] matrix stays around DISTANCE_BLOCK_ELEMENTS floats, whatever T is.
    """
    sq_norms = np.einsum("kc,kc->k", centers, centers)  # [K]; |x|^2 is the same for every centre of a frame
    rows = max(1, DISTANCE_BLOCK_ELEMENTS // centers.shape[0])
    labels = np.empty(features.shape[0], dtype=np.int64)
    for start in range(0, features.shape[0], rows):
        block = features[start : start + rows]
        scores = block @ centers.T  # [rows, K]
        scores *= -2.0
        scores += sq_norms
        labels[start : start + rows] = np.argmin(scores, axis=1)
    return labels


class KMeansRetriever(Retriever):
    """Replaces each frame by its speaker's nearest cluster centre (the centres are keyed by speaker name)."""

    kind = "kmeans"
    noun = "cluster file"

    def __init__(self, path: str, centers: Mapping[str, np.ndarray]) -> None:
        dims = {c.shape[1] for c in centers.values()}
        if len(dims) != 1:
            raise ModelError(f"The cluster file '{path}' mixes feature sizes {sorted(dims)} between speakers.")
        super().__init__(path, dims.pop(), tuple(centers))
        self.centers = dict(centers)

    def _speaker_key(self, speaker_name: str, speaker_id: int) -> str:
        if speaker_name not in self.centers:
            raise self._missing_speaker(speaker_name, "speaker")
        return speaker_name

    def _retrieve(self, features: np.ndarray, key: Any) -> np.ndarray:
        centers = self.centers[key]
        return centers[nearest_centers(features, centers)]


def _centers_of(path: str, speaker: Any, entry: Any) -> np.ndarray:
    if not isinstance(entry, Mapping) or CENTERS_KEY not in entry:
        raise ModelError(
            f"'{path}' is not a so-vits-svc cluster file: the entry for {speaker!r} has no '{CENTERS_KEY}'."
        )
    raw = entry[CENTERS_KEY]
    centers = raw.numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw)
    if centers.ndim != 2 or centers.shape[0] == 0 or not np.issubdtype(centers.dtype, np.number):
        raise ModelError(f"The cluster centres of {speaker!r} in '{path}' are not a [K, C] array ({centers.shape}).")
    declared = entry.get(N_FEATURES_KEY, centers.shape[1])
    if int(declared) != centers.shape[1]:
        raise ModelError(
            f"The cluster file '{path}' says {speaker!r} has {declared}-dim features but its centres are "
            f"{centers.shape[1]}-dim; the file is damaged."
        )
    return np.ascontiguousarray(centers, dtype=np.float32)


def load_kmeans(path: str | os.PathLike) -> KMeansRetriever:
    """Read a `kmeans_*.pt` cluster file safely (weights_only + numpy arrays)."""
    path = os.fspath(path)
    data = load_torch(path, what="cluster file")
    if not isinstance(data, Mapping) or not data:
        raise ModelError(f"'{path}' is not a so-vits-svc cluster file: expected a dict of speakers.")
    if not any(isinstance(v, Mapping) and CENTERS_KEY in v for v in data.values()):
        keys = ", ".join(map(str, list(data)[:5]))
        raise ModelError(
            f"'{path}' is not a so-vits-svc cluster file (top-level keys: {keys}); it may be a model checkpoint."
        )
    return KMeansRetriever(path, {str(spk): _centers_of(path, spk, entry) for spk, entry in data.items()})


def train_kmeans(features: np.ndarray, n_clusters: int, seed: int = 0, max_iter: int = 300,
                 init: str = "k-means++") -> np.ndarray:
    """Fit k-means on features [N, C]; returns the centres [n_clusters, C] float32.

    sklearn KMeans with one initialisation; init "k-means++" (sklearn's default, as upstream) or "random".
    """
    from sklearn.cluster import KMeans  # deferred: only training needs sklearn

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, C], got shape {features.shape}")
    if not 1 <= n_clusters <= features.shape[0]:
        raise OptionError(f"Cannot make {n_clusters} clusters from {features.shape[0]} feature frames.")
    model = KMeans(n_clusters=n_clusters, init=init, n_init=1, random_state=seed, max_iter=max_iter)
    model.fit(features)
    return model.cluster_centers_.astype(np.float32)


def save_kmeans(path: str | os.PathLike, centers: Mapping[str, np.ndarray], n_threads: int | None = None) -> None:
    """Write {speaker_name: centres [K, C]} in upstream's layout (readable by so-vits-svc's cluster loader)."""
    threads = int(n_threads if n_threads is not None else (os.cpu_count() or 1))
    payload = {}
    for speaker, c in centers.items():
        c = np.ascontiguousarray(c, dtype=np.float32)
        if c.ndim != 2:
            raise ValueError(f"centres of {speaker!r} must be [K, C], got shape {c.shape}")
        payload[str(speaker)] = {N_FEATURES_KEY: int(c.shape[1]), N_THREADS_KEY: threads, CENTERS_KEY: c}
    torch.save(payload, os.fspath(path))
