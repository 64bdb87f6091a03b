"""Feature-retrieval indexes (spec e.2): `feature_and_index.pkl` ({speaker_id: faiss index}, plain pickle)
and single `.index` files written by faiss.write_index (RVC / MoeVS style). Load, search, build and save.

How faiss (1.7.3 up to 1.15) pickles an index: the pickle names the SWIG class (e.g.
`faiss.swigfaiss_avx2.IndexIVFFlat`), creates it with NEWOBJ and no arguments, then BUILDs it from the state
{"this": bytes of faiss.serialize_index}. No other global is referenced (a protocol-2 pickle also spells the
bytes as _codecs.encode(text, "latin1")). We resolve those class names to an inert stand-in, so unpickling
runs no faiss or other code; afterwards the bytes go through faiss.deserialize_index, the same reader as for
`.index` files.
"""
from __future__ import annotations

import math
import mmap
import os
import pickle
from typing import Any, Callable, Hashable, Mapping

import numpy as np

from ..errors import ModelError, OptionError
from ..file_limits import MAX_FAISS_INDEX_BYTES, check_file_size
from ..safe_load import load_pickle
from .base import Retriever
from .faiss_check import check_faiss_blob

SEARCH_K = 8  # neighbours averaged per frame
SEARCH_BLOCK_FRAMES = 1024  # frames searched and mixed per block (bounds the [block, k, C] gather)
MAX_TRAIN_ROWS = 200_000  # above this, upstream replaces the rows by k-means centres
REDUCED_ROWS = 10_000  # number of those centres
MIN_ROWS_PER_LIST = 39  # n_ivf = min(16 * sqrt(n), n // 39)
ADD_BATCH = 8192  # rows per index.add call

# SWIG modules faiss loads depending on the CPU of the machine that wrote the pickle.
FAISS_MODULES = ("faiss", "faiss.swigfaiss", "faiss.swigfaiss_avx2", "faiss.swigfaiss_avx512",
                 "faiss.swigfaiss_avx512_spr", "faiss.swigfaiss_sve")
INDEX_CLASSES = ("IndexIVFFlat", "IndexFlat", "IndexFlatL2", "IndexFlatIP")
_STATE_KEY = "this"


class _PickledIndex:
    """Inert stand-in for a pickled faiss index: unpickling only fills __dict__ with {"this": bytes}."""

    class_name = ""


def _stand_in(name: str) -> type:
    return type(name, (_PickledIndex,), {"class_name": name, "__module__": "faiss"})


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles spell a bytes object as _codecs.encode(text, "latin1"); allow that use only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"global _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_STAND_INS = {name: _stand_in(name) for name in INDEX_CLASSES}
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    (module, name): _STAND_INS[name] for module in FAISS_MODULES for name in INDEX_CLASSES
}
ALLOWED_GLOBALS[("_codecs", "encode")] = _latin1_bytes  # protocol 2 only; protocols 3+ (upstream) need no more


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ModelError("Feature retrieval files need the 'faiss-cpu' package, which is not installed.") from None
    return faiss


def _deserialize(path: str, key: Any, obj: Any) -> Any:
    state = getattr(obj, "__dict__", {}).get(_STATE_KEY) if isinstance(obj, _PickledIndex) else None
    if not isinstance(state, (bytes, bytearray)):
        raise ModelError(f"The index for speaker {key!r} in '{path}' is not a serialized faiss index.")
    check_faiss_blob(state, f"The index for speaker {key!r} in '{os.path.basename(path)}'")
    faiss = _import_faiss()
    try:
        index = faiss.deserialize_index(np.frombuffer(state, dtype=np.uint8))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise ModelError(f"The faiss index for speaker {key!r} in '{path}' is damaged: {first}") from None
    claimed = type(obj).class_name
    if type(index).__name__ != claimed:
        raise ModelError(
            f"The index for speaker {key!r} in '{path}' claims to be {claimed} but holds "
            f"{type(index).__name__}; the file was tampered with or is damaged."
        )
    return index


def _check_index(path: str, key: Any, index: Any) -> None:
    if index.ntotal <= 0:
        raise ModelError(f"The faiss index for speaker {key!r} in '{path}' is empty (no feature vectors).")


class FaissRetriever(Retriever):
    """Replaces each frame by the (1/d)^2-weighted mean of its 8 nearest training frames (d: squared L2)."""

    kind = "faiss"
    noun = "feature index"

    def __init__(self, path: str, indexes: Mapping[Hashable, Any], per_speaker: bool = True) -> None:
        dims = {int(ix.d) for ix in indexes.values()}
        if len(dims) != 1:
            raise ModelError(f"The feature index '{path}' mixes feature sizes {sorted(dims)} between speakers.")
        super().__init__(path, dims.pop(), tuple(indexes) if per_speaker else ())
        self.indexes = dict(indexes)
        self.per_speaker = per_speaker
        self._vectors: dict[Hashable, np.ndarray] = {}  # reconstruct_n cache, per speaker

    def _speaker_key(self, speaker_name: str, speaker_id: int) -> Hashable:
        if not self.per_speaker:
            return next(iter(self.indexes))
        if speaker_id not in self.indexes:
            raise self._missing_speaker(speaker_id, f"speaker id (for '{speaker_name}')")
        return speaker_id

    def vectors(self, key: Hashable) -> np.ndarray:
        """All vectors stored for speaker `key`, [ntotal, C] float32 (cached)."""
        if key not in self._vectors:
            index = self.indexes[key]
            self._vectors[key] = index.reconstruct_n(0, index.ntotal)
        return self._vectors[key]

    def _retrieve(self, features: np.ndarray, key: Hashable) -> np.ndarray:
        index = self.indexes[key]
        vectors = self.vectors(key)
        out = np.empty_like(features)
        for start in range(0, features.shape[0], SEARCH_BLOCK_FRAMES):
            block = features[start : start + SEARCH_BLOCK_FRAMES]
            distances, ids = index.search(block, SEARCH_K)
            out[start : start + block.shape[0]] = weighted_neighbours(block, vectors, distances, ids)
        return out


def neighbour_weights(distances: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per-frame weights (1/d)^2 normalised to sum 1. distances, ids: [T, k] from faiss search.

    Guards: missing neighbours (id -1) weigh 0; a frame with a zero (or vanishing) distance splits its weight
    evenly over those exact matches; a frame with no neighbour at all gets all-zero weights.
    """
    valid = ids >= 0
    with np.errstate(divide="ignore", over="ignore"):
        w = np.square(np.float32(1.0) / distances)
    w = np.where(valid, w, np.float32(0.0))
    exact = valid & ~np.isfinite(w)
    rows = exact.any(axis=1)
    w[rows] = exact[rows]
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def weighted_neighbours(features: np.ndarray, vectors: np.ndarray, distances: np.ndarray,
                        ids: np.ndarray) -> np.ndarray:
    """sum_k w_k * vectors[ids_k] per frame, [T, C]; frames without neighbours keep their own features."""
    w = neighbour_weights(distances.astype(np.float32, copy=False), ids)
    gathered = vectors[np.where(ids >= 0, ids, 0)]  # [T, k, C]
    retrieved = np.sum(gathered * w[:, :, None], axis=1)
    orphans = w.sum(axis=1) == 0
    retrieved[orphans] = features[orphans]
    return retrieved.astype(np.float32, copy=False)


def load_index_pickle(path: str | os.PathLike) -> FaissRetriever:
    """Read upstream's `feature_and_index.pkl` ({speaker_id: faiss index}) without running pickled code."""
    path = os.fspath(path)
    data = load_pickle(path, allowed=ALLOWED_GLOBALS, what="feature index")
    if isinstance(data, _PickledIndex):
        data = {0: data}
    if not isinstance(data, Mapping) or not data:
        raise ModelError(f"'{path}' is not a so-vits-svc feature index: expected a dict {{speaker_id: index}}.")
    indexes = {}
    for key, obj in data.items():
        indexes[key] = _deserialize(path, key, obj)
        _check_index(path, key, indexes[key])
    return FaissRetriever(path, indexes)


def load_index_file(path: str | os.PathLike) -> FaissRetriever:
    """Read one faiss.write_index file; it serves every speaker."""
    path = os.fspath(path)
    name = os.path.basename(path)
    if check_file_size(path, MAX_FAISS_INDEX_BYTES, "faiss index file") == 0:
        raise ModelError(f"'{name}' is empty (0 bytes); the copy probably failed.")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        check_faiss_blob(data, f"'{name}'")  # faiss.read_index sizes its vectors from the file's counts first
    faiss = _import_faiss()
    try:
        index = faiss.read_index(path)
    except RuntimeError:
        raise ModelError(f"'{name}' is not a readable faiss index file.") from None
    _check_index(path, 0, index)
    retriever = FaissRetriever(path, {0: index}, per_speaker=False)
    retriever.kind = "faiss_single"
    return retriever


def build_faiss_index(features: np.ndarray, seed: int = 0, n_cpu: int | None = None,
                      on_trained: Callable[[Any, np.ndarray], None] | None = None) -> Any:
    """Build a speaker's retrieval index as upstream's train_index does (spec e.2).

    features: [N, C] float32 content frames. Rows are shuffled; above MAX_TRAIN_ROWS they are replaced by
    REDUCED_ROWS MiniBatchKMeans centres. Index "IVF{n_ivf},Flat" with n_ivf = min(int(16 sqrt(n)), n // 39),
    nprobe 1, trained and filled in batches of ADD_BATCH rows. `on_trained(index, rows)` is called after training
    and before the rows are added (RVC writes its trained_*.index and total_fea.npy at that point).
    """
    faiss = _import_faiss()
    rows = np.asarray(features, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"features must be [N, C], got shape {rows.shape}")
    rng = np.random.default_rng(seed)
    rows = rows[rng.permutation(rows.shape[0])]
    if rows.shape[0] > MAX_TRAIN_ROWS:
        from sklearn.cluster import MiniBatchKMeans  # deferred: only large training sets need it

        batch = 256 * (n_cpu or os.cpu_count() or 1)
        kmeans = MiniBatchKMeans(n_clusters=REDUCED_ROWS, batch_size=batch, compute_labels=False, init="random",
                                 random_state=seed)
        rows = kmeans.fit(rows).cluster_centers_.astype(np.float32)
    n = rows.shape[0]
    n_ivf = min(int(16 * math.sqrt(n)), n // MIN_ROWS_PER_LIST)
    if n_ivf < 1:
        raise OptionError(
            f"A feature index needs at least {MIN_ROWS_PER_LIST} feature frames per speaker; got {n}."
        )
    index = faiss.index_factory(rows.shape[1], f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(rows)
    if on_trained is not None:
        on_trained(index, rows)
    for start in range(0, n, ADD_BATCH):
        index.add(rows[start : start + ADD_BATCH])
    return index


def save_index_pickle(path: str | os.PathLike, indexes: Mapping[int, Any]) -> None:
    """Write {speaker_id: faiss index} as upstream's feature_and_index.pkl (a plain pickle)."""
    for key in indexes:
        if not isinstance(key, int) or isinstance(key, bool):
            raise ValueError(f"feature index keys are speaker ids (int), got {key!r}")
    with open(os.fspath(path), "wb") as fh:
        pickle.dump(dict(indexes), fh)
