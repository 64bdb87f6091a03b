"""A voice's latent map: the reference frames (training clips + retrieval vectors) fitted once and cached, plus
the frames of an input clip and of its conversion placed on it.

    request = MapRequest(dataset="dataset/44k/", method="umap", cache_dir="~/.cache/svc-studio/latent")
    lmap = build_map(svc, request, FrameLabeller(svc.encoder), clip=InputClip(wav, sr, "song.wav"),
                     conversion=ConversionSpec("alice", transpose=0, cluster_ratio=0.5))
    lmap.coords [N, 2], lmap.frames (labels), lmap.reference_count, lmap.from_cache

The cache file (<cache_dir>/latent-<key>.npz) holds the reference frames with their labels and the projection as
plain arrays; it is read with np.load(allow_pickle=False). Its key covers the voice files, the encoder, every
training clip (name, size, mtime), the retrieval file, the method and the frame cap, so a change refits.
Without a dataset or retrieval file, the map is fitted on the input's own frames (not cached).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .collect import (MAX_CLIPS_PER_SPEAKER, ConversionSpec, FrameLabeller, converted_frames, dataset_fingerprint,
                      dataset_frames, retrieval_frames)
from .frames import FrameSet
from .project import KNN_PLACE, PCA_DIMS, Projection, fit_projection

MAX_REFERENCE_FRAMES = 20_000  # reference frames kept (seeded subsample): UMAP of 20k frames takes ~15 s here
MAX_ADDED_FRAMES = 5_000  # input / converted frames drawn per clip (100 s at 50 frames/s; subsampled above)
CACHE_VERSION = 1
CACHE_PREFIX = "latent-"
REF = "ref_"


@dataclass(frozen=True)
class MapRequest:
    """What goes on the reference map and how it is drawn."""

    dataset: str | None = None  # training clips (<speaker>/<clip>.wav, preprocess caches reused)
    method: str = "umap"
    max_frames: int = MAX_REFERENCE_FRAMES
    max_per_speaker: int = MAX_CLIPS_PER_SPEAKER
    use_retrieval: bool = True  # add the voice's k-means centres / index rows
    seed: int = 0
    cache_dir: str | None = None  # None: fit every time


@dataclass(frozen=True)
class InputClip:
    """An input clip: float audio [N] (or [N, ch]) at `sr`, and the name frames are labelled with."""

    wav: np.ndarray
    sr: int
    name: str = "input"


@dataclass
class LatentMap:
    """Frames and their 2-D positions; the first `reference_count` frames are the fitted reference set.
    `audio`: clip label -> (float32 [N], rate) of the input and converted clips; training clips play from
    `dataset`/<clip label>."""

    frames: FrameSet
    coords: np.ndarray
    method: str
    reference_count: int
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)
    audio: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    dataset: str | None = None


def _file_stamp(path: str | None) -> list | None:
    if not path:
        return None
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


def cache_key(svc, request: MapRequest, labeller: FrameLabeller) -> str:
    """A hash of everything the reference map depends on."""
    retriever = getattr(svc, "retriever", None)
    parts = {
        "version": CACHE_VERSION, "model": _file_stamp(getattr(svc, "model_path", None)),
        "encoder": [labeller.encoder.name, labeller.encoder.dim, getattr(labeller.encoder, "path", "")],
        "phones": getattr(labeller.phones, "name", None),
        "dataset": dataset_fingerprint(request.dataset, request.max_per_speaker) if request.dataset else None,
        "retrieval": _file_stamp(retriever.path) if retriever is not None and request.use_retrieval else None,
        "method": request.method, "max_frames": request.max_frames, "seed": request.seed,
        "pca_dims": PCA_DIMS, "knn": KNN_PLACE,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _cache_path(request: MapRequest, key: str) -> Path | None:
    if not request.cache_dir:
        return None
    return Path(os.path.expanduser(request.cache_dir)) / f"{CACHE_PREFIX}{key}.npz"


def load_reference(path: Path) -> tuple[FrameSet, Projection] | None:
    """A cached reference map, or None when absent or unreadable (then it is refitted and rewritten)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return FrameSet.from_arrays(data, REF), Projection.from_arrays(data)
    except Exception:  # noqa: BLE001 - missing, truncated, another version, pickled: refit
        return None


def save_reference(path: Path, frames: FrameSet, projection: Projection) -> None:
    """Write atomically (a temporary file renamed), so a crash never leaves half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **frames.to_arrays(REF), **projection.to_arrays())
    os.replace(tmp, path)


def reference_frames(svc, request: MapRequest, labeller: FrameLabeller) -> FrameSet | None:
    """Training frames and retrieval vectors, subsampled to request.max_frames (None when there are none)."""
    sets = []
    if request.dataset:
        sets.append(dataset_frames(request.dataset, labeller, request.max_per_speaker))
    retriever = getattr(svc, "retriever", None)
    if request.use_retrieval and retriever is not None:
        sets.append(retrieval_frames(retriever, list(getattr(svc, "speakers", [])), seed=request.seed))
    if not sets:
        return None
    return FrameSet.concat(sets).subsample(request.max_frames, request.seed)


def reference_map(svc, request: MapRequest, labeller: FrameLabeller) -> tuple[FrameSet, Projection, bool] | None:
    """(reference frames, fitted projection, loaded from cache?) or None without a dataset or retrieval file."""
    path = _cache_path(request, cache_key(svc, request, labeller))
    if path is not None and path.exists():
        cached = load_reference(path)
        if cached is not None:
            return cached[0], cached[1], True
    frames = reference_frames(svc, request, labeller)
    if frames is None:
        return None
    projection = fit_projection(frames.features, request.method, request.seed)
    if path is not None:
        save_reference(path, frames, projection)
    return frames, projection, False


def build_map(svc, request: MapRequest, labeller: FrameLabeller, clip: InputClip | None = None,
              conversion: ConversionSpec | None = None) -> LatentMap:
    """The map of `svc`'s reference frames, with the input clip's frames and (with `conversion`) its conversion's
    re-encoded frames placed on it."""
    from ..errors import OptionError

    added: list[FrameSet] = []
    audio: dict[str, tuple[np.ndarray, int]] = {}
    if clip is not None:
        inp = labeller.embed(clip.wav, clip.sr, "input", "input", clip.name)
        added.append(inp.subsample(MAX_ADDED_FRAMES, request.seed))
        audio[clip.name] = (np.asarray(clip.wav, np.float32), int(clip.sr))
        if conversion is not None:
            conv, out = converted_frames(svc, clip.wav, clip.sr, conversion, labeller, clip.name)
            added.append(conv.subsample(MAX_ADDED_FRAMES, request.seed))
            audio[str(conv.clip[0]) if len(conv) else clip.name] = (out, int(svc.sample_rate))
    elif conversion is not None:
        raise OptionError("Converting needs an input clip.")
    reference = reference_map(svc, request, labeller)
    if reference is None:
        if not added:
            raise OptionError("Nothing to draw: give a dataset folder, a voice with a cluster/index file, or an "
                              "input clip.")
        frames = FrameSet.concat(added)
        projection = fit_projection(frames.features, request.method, request.seed)
        return LatentMap(frames, projection.coords, projection.method, len(frames), False, projection.notes,
                         audio, request.dataset)
    ref, projection, cached = reference
    coords = [projection.coords] + [projection.place(f.features) for f in added]
    return LatentMap(FrameSet.concat([ref] + added), np.concatenate(coords), projection.method, len(ref), cached,
                     projection.notes, audio, request.dataset)
