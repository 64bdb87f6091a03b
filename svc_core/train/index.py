"""Cluster (k-means) and feature-retrieval (faiss) files from a preprocessed dataset's content features.

    python -m svc_core train-index --data dataset --kind kmeans --clusters 10000 -o logs/44k/kmeans_10000.pt
    python -m svc_core train-index --data dataset --kind faiss -o logs/44k/feature_and_index.pkl

kmeans: per speaker folder, every <clip>.wav.soft.pt frame ([T_c, C]) clustered with k-means; the file is keyed by
speaker name (upstream cluster/train_cluster.py layout). faiss: per speaker of config.json's spk map, an
IVF{n},Flat index (upstream train_index.py); the pickle is keyed by speaker id.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import OptionError
from ..retrieval import build_faiss_index, save_index_pickle, save_kmeans, train_kmeans
from ..safe_load import load_torch
from .dataset import DatasetError

KINDS = ("kmeans", "faiss")
SUFFIXES = {"kmeans": ".pt", "faiss": ".pkl"}  # upstream's kmeans_10000.pt / feature_and_index.pkl
DEFAULT_CLUSTERS = 10000
SKIP_FOLDERS = {"filelists"}


def speaker_folders(data_dir: str | os.PathLike) -> dict[str, Path]:
    """{speaker name: folder} for every sub-folder holding *.soft.pt files, sorted by name."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"Dataset folder '{root}' does not exist.")
    found = {p.name: p for p in sorted(root.iterdir())
             if p.is_dir() and p.name not in SKIP_FOLDERS and any(p.glob("*.soft.pt"))}
    if not found:
        raise DatasetError(f"No speaker folder in '{root}' holds content features (*.wav.soft.pt); run "
                           "preprocessing first.")
    return found


def speaker_features(folder: Path) -> np.ndarray:
    """All content frames of a speaker folder (sorted clips) as float32 [N, C]."""
    rows = []
    for path in sorted(folder.glob("*.soft.pt")):
        t = load_torch(path, what="content features")
        if not isinstance(t, torch.Tensor) or t.dim() not in (2, 3):
            raise DatasetError(f"'{path}' should hold a [1, C, T] tensor of content features.")
        t = t.squeeze(0) if t.dim() == 3 else t
        rows.append(t.float().T.numpy())
    dims = {r.shape[1] for r in rows}
    if len(dims) > 1:
        raise DatasetError(f"Content features in '{folder}' have different widths {sorted(dims)}; they were made "
                           "with different speech encoders. Re-run preprocessing.")
    return np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32)


def _speaker_ids(data_dir: Path, names: list[str], log: Callable[[str], None]) -> dict[str, int]:
    config = data_dir / "config.json"
    if config.is_file():
        spk = json.loads(config.read_text(encoding="utf-8-sig")).get("spk") or {}
        if spk:
            unknown = [n for n in names if n not in spk]
            if unknown:
                log(f"speaker folder(s) {unknown} are not in config.json's spk map; they are left out")
            return {n: int(spk[n]) for n in names if n in spk}
    log("no spk map in config.json; speaker ids follow the sorted folder names")
    return {n: i for i, n in enumerate(names)}


def train_index(data_dir: str | os.PathLike, out_path: str | os.PathLike, kind: str = "kmeans",
                clusters: int = DEFAULT_CLUSTERS, seed: int = 0, log: Callable[[str], None] = print,
                max_frames: int = 0) -> Path:
    """Build a kmeans_*.pt (kind "kmeans") or feature_and_index.pkl (kind "faiss") file; returns its path.

    max_frames > 0 (kmeans): fit each speaker's centres on at most that many frames, drawn at random (seeded) --
    k-means time grows with frames x clusters, and a few tens of thousands of frames place the centres well."""
    if kind not in KINDS:
        raise OptionError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    data_dir, out_path = Path(data_dir), Path(out_path)
    if out_path.suffix.lower() != SUFFIXES[kind] or out_path.name.startswith(("G_", "D_")):
        raise OptionError(f"-o '{out_path.name}': a {kind} file is written to a {SUFFIXES[kind]} name such as "
                          f"{'kmeans_10000.pt' if kind == 'kmeans' else 'feature_and_index.pkl'} (so that no "
                          "checkpoint is overwritten).")
    folders = speaker_folders(data_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "kmeans":
        centers = {}
        for name, folder in folders.items():
            feats = speaker_features(folder)
            if 0 < max_frames < feats.shape[0]:
                pick = np.random.default_rng(seed).choice(feats.shape[0], max_frames, replace=False)
                log(f"{name}: {max_frames} of {feats.shape[0]} frames drawn for k-means")
                feats = feats[np.sort(pick)]
            k = min(clusters, feats.shape[0])
            if k < clusters:
                log(f"{name}: only {feats.shape[0]} frames, so {k} clusters instead of {clusters}")
            log(f"{name}: k-means with {k} clusters on {feats.shape[0]} frames of {feats.shape[1]} dims")
            centers[name] = train_kmeans(feats, k, seed=seed)
        save_kmeans(out_path, centers)
    else:
        indexes = {}
        for name, sid in _speaker_ids(data_dir, list(folders), log).items():
            feats = speaker_features(folders[name])
            log(f"{name} (id {sid}): faiss index of {feats.shape[0]} frames of {feats.shape[1]} dims")
            indexes[sid] = build_faiss_index(feats, seed=seed)
        save_index_pickle(out_path, indexes)
    log(f"wrote {out_path}")
    return out_path
