"""2-D projections of content frames: UMAP (umap-learn) or PCA, stored as plain arrays (no pickle).

    proj = fit_projection(reference.features, method="umap", seed=0)   # [N, C] -> proj.coords [N, 2]
    xy = proj.place(new_frames)                                         # [M, C] -> [M, 2]
    proj.save("map.npz"); Projection.load("map.npz")                    # np.load(allow_pickle=False)

PCA: an eigendecomposition of the covariance ([C, C]); placing new frames is exact (a linear map).
UMAP: frames are first reduced by PCA to `PCA_DIMS` dimensions (measured: bench/latent_umap.py), then UMAP runs.
New frames are placed out of sample by k-nearest-neighbour weighting: the mean of the 2-D positions of their
KNN_PLACE nearest reference frames (in the PCA-reduced space), weighted by 1 / distance. This is how UMAP's own
`transform` starts before it refines the points; the refinement needs the fitted UMAP object (its graph and
nearest-neighbour index), which only pickle can store, and a pickle is code we will not load from a cache folder.
So the cache keeps the reference coordinates and the PCA basis, and a new input costs one neighbour search.
Above UMAP_MAX_FIT_FRAMES reference frames, UMAP fits a seeded subset (landmarks) and the rest are placed the same
way: UMAP's cost grows with the frames it fits, the placement's barely.
"""
from __future__ import annotations

import importlib.util
import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError, OptionError

METHODS = ("umap", "pca")
PCA_DIMS = 32  # UMAP input width after PCA pre-reduction (phonevec256: 256 -> 32 keeps ~90 % of the variance)
KNN_PLACE = 8  # reference neighbours averaged to place a new frame (UMAP maps)
KNN_WORKING_MB = 128  # memory for the placement's distance blocks (sklearn working_memory, MB)
PCA_BLOCK_ROWS = 8192  # rows per block of the covariance sums (8192 x 256 float64: 16 MB)
UMAP_NEIGHBOURS = 15  # umap-learn's default n_neighbors
UMAP_MIN_DIST = 0.1  # umap-learn's default min_dist
MIN_FRAMES = 4  # fewer frames than this cannot be projected meaningfully
UMAP_MAX_FIT_FRAMES = 20_000  # frames UMAP itself fits (landmarks); more are placed by kNN (~20 s fit here)
FORMAT = "svc-latent-projection"
VERSION = 1


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


@dataclass
class Projection:
    """A fitted map: `method`, PCA `mean` [C] and `basis` [D, C] (rows: components), the reference frames'
    2-D `coords` [N, 2] and their PCA-reduced features `reduced` [N, D] (UMAP maps; placement neighbours),
    `notes` (e.g. that UMAP was missing and PCA ran instead)."""

    method: str
    mean: np.ndarray
    basis: np.ndarray
    coords: np.ndarray
    reduced: np.ndarray
    notes: list[str] = field(default_factory=list)

    def reduce(self, features: np.ndarray) -> np.ndarray:
        """[M, C] -> [M, D] in the PCA basis."""
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0]:
            raise OptionError(f"These frames are {features.shape[-1]}-dim; the map was fitted on "
                              f"{self.mean.shape[0]}-dim frames (another content encoder).")
        return ((features - self.mean) @ self.basis.T).astype(np.float32)

    def place(self, features: np.ndarray) -> np.ndarray:
        """New frames [M, C] -> [M, 2] map positions (PCA: exact; UMAP: k-nearest-neighbour weighting)."""
        reduced = self.reduce(features)
        if self.method == "pca" or len(reduced) == 0:
            return reduced[:, :2]
        return knn_place(self.reduced, self.coords, reduced, KNN_PLACE)

    def to_arrays(self, prefix: str = "proj_") -> dict[str, np.ndarray]:
        meta = json.dumps({"format": FORMAT, "version": VERSION, "method": self.method, "notes": self.notes})
        return {prefix + "meta": np.asarray(meta), prefix + "mean": self.mean, prefix + "basis": self.basis,
                prefix + "coords": self.coords, prefix + "reduced": self.reduced}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "proj_") -> "Projection":
        try:
            meta = json.loads(str(arrays[prefix + "meta"]))
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise ModelError("not a latent projection of this version")
            return cls(meta["method"], np.asarray(arrays[prefix + "mean"], np.float32),
                       np.asarray(arrays[prefix + "basis"], np.float32), np.asarray(arrays[prefix + "coords"], np.float32),
                       np.asarray(arrays[prefix + "reduced"], np.float32), list(meta.get("notes", [])))
        except (KeyError, ValueError) as err:
            raise ModelError(f"This latent-map file is damaged or from another version ({err}).") from None

    def save(self, path: str | os.PathLike) -> None:
        np.savez(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Projection":
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays(data)


def pca_basis(features: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean [C], basis [dims, C]): the top principal axes of features [N, C] (covariance eigendecomposition,
    float64; each axis' sign fixed so its largest coefficient is positive, for reproducible maps)."""
    x = np.asarray(features, np.float32)
    n, dim = x.shape
    total, gram = np.zeros(dim), np.zeros((dim, dim))
    for start in range(0, n, PCA_BLOCK_ROWS):  # float64 sums over row blocks: memory stays O(block x C)
        block = x[start: start + PCA_BLOCK_ROWS].astype(np.float64)
        total += block.sum(0)
        gram += block.T @ block
    mean = total / max(n, 1)
    cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1) if n > 1 else np.eye(dim)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:dims]
    basis = vectors[:, order].T
    signs = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(1)])
    basis *= np.where(signs == 0, 1, signs)[:, None]
    return mean.astype(np.float32), basis.astype(np.float32)


def knn_place(ref_reduced: np.ndarray, ref_coords: np.ndarray, new_reduced: np.ndarray, k: int) -> np.ndarray:
    """[M, 2]: each new point at the 1/distance-weighted mean position of its k nearest reference points."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(ref_reduced))
    from sklearn import config_context

    # brute force (BLAS distances): 80k x 20k frames at 32 dims in ~11 s here, the kd-tree ~18 s, faiss flat ~22 s;
    # the distance blocks are held to KNN_WORKING_MB
    with config_context(working_memory=KNN_WORKING_MB):
        dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(ref_reduced).kneighbors(new_reduced)
    weights = 1.0 / np.maximum(dist, 1e-6)
    weights /= weights.sum(1, keepdims=True)
    return np.einsum("mk,mkd->md", weights, ref_coords[idx]).astype(np.float32)


def fit_projection(features: np.ndarray, method: str = "umap", seed: int = 0, pca_dims: int = PCA_DIMS,
                   n_neighbors: int = UMAP_NEIGHBOURS, min_dist: float = UMAP_MIN_DIST,
                   parallel: bool = False, max_fit: int = UMAP_MAX_FIT_FRAMES) -> Projection:
    """Fit a 2-D map of reference frames [N, C]. method "umap" falls back to "pca" (with a note) when umap-learn
    is not installed. parallel=True lets UMAP use every thread but gives up run-to-run reproducibility (umap-learn
    runs single-threaded when seeded). Above `max_fit` frames UMAP is fitted on a seeded subset of that many
    (landmarks) and the other frames are placed on it by kNN weighting (as new frames are), which keeps a 100k-frame
    map within a minute here (bench/latent_umap.py)."""
    if method not in METHODS:
        raise OptionError(f"Unknown map method '{method}'; use one of {', '.join(METHODS)}.")
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) < MIN_FRAMES:
        raise OptionError(f"A map needs at least {MIN_FRAMES} frames; got {len(features)}.")
    notes: list[str] = []
    if method == "umap" and not umap_available():
        notes.append("umap-learn is not installed: PCA map instead (pip install -r requirements.txt).")
        method = "pca"
    dims = 2 if method == "pca" else min(pca_dims, features.shape[1], len(features) - 1)
    mean, basis = pca_basis(features, max(dims, 2))
    reduced = ((features - mean) @ basis.T).astype(np.float32)
    if method == "pca":
        return Projection("pca", mean, basis, reduced[:, :2].copy(), np.zeros((0, basis.shape[0]), np.float32), notes)
    landmarks = np.arange(len(reduced))
    if 0 < max_fit < len(reduced):
        landmarks = np.sort(np.random.default_rng(seed).choice(len(reduced), size=max_fit, replace=False))
        notes.append(f"UMAP fitted on {max_fit} of {len(reduced)} frames; the others placed by their neighbours.")
    coords = umap_coords(reduced[landmarks], seed, n_neighbors, min_dist, parallel)
    if len(landmarks) < len(reduced):
        rest = np.setdiff1d(np.arange(len(reduced)), landmarks)
        full = np.empty((len(reduced), 2), np.float32)
        full[landmarks] = coords
        full[rest] = knn_place(reduced[landmarks], coords, reduced[rest], KNN_PLACE)
        coords = full
    return Projection("umap", mean, basis, coords, reduced, notes)


def umap_coords(reduced: np.ndarray, seed: int, n_neighbors: int, min_dist: float, parallel: bool) -> np.ndarray:
    """umap-learn's 2-D embedding of [N, D] -> [N, 2] float32."""
    import umap  # deferred: importing umap-learn compiles numba code (seconds)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")  # seeded UMAP runs single-threaded
        reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(reduced) - 1), min_dist=min_dist,
                            random_state=None if parallel else seed, n_jobs=-1 if parallel else 1)
        return reducer.fit_transform(reduced).astype(np.float32)
