"""The out folder's cache of separated stems, keyed by the song's samples and the separator passes (name + model
file hash): covering the same song again with another voice, key or mix skips separation."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

CACHE_FOLDER = ".stems-cache"  # inside the cover's out folder
HASH_BLOCK = 2**20  # bytes per read when hashing a model file
KEEP_ENTRIES = 4  # songs x separators kept per out folder (each ~21 MB per stereo minute and stem)
STEM_FILES = ("vocals", "accompaniment")


def file_digest(path: Optional[str | os.PathLike]) -> str:
    """sha256 of a model file (hex, first 16), or "" for none."""
    if path is None:
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()[:16]


def cache_key(song: np.ndarray, sample_rate: int, passes: Sequence[tuple[str, Optional[str]]]) -> str:
    """Hex key of (song samples [2, N] float32, rate, each pass's (separator name, model file))."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(song, np.float32).view(np.uint8))
    h.update(str(int(sample_rate)).encode())
    for name, model in passes:
        h.update(f"|{name}:{file_digest(model)}".encode())
    return h.hexdigest()


def load(out_dir: Path, key: str) -> Optional[tuple[np.ndarray, np.ndarray, str]]:
    """(vocals [2, N], accompaniment [2, N], separator label) from the cache, or None."""
    folder = Path(out_dir) / CACHE_FOLDER / key
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        stems = [np.load(folder / f"{name}.npy") for name in STEM_FILES]
    except (OSError, ValueError):
        return None
    os.utime(folder)  # most recently used
    return stems[0], stems[1], str(meta.get("separator", ""))


def store(out_dir: Path, key: str, vocals: np.ndarray, accompaniment: np.ndarray, label: str) -> None:
    """Write the stems (float32 .npy, exact) atomically; keep the KEEP_ENTRIES most recently used entries."""
    root = Path(out_dir) / CACHE_FOLDER
    tmp = root / f"{key}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, stem in zip(STEM_FILES, (vocals, accompaniment)):
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(stem, np.float32))
    (tmp / "meta.json").write_text(json.dumps({"separator": label}), encoding="utf-8")
    final = root / key
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".part")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        shutil.rmtree(old, ignore_errors=True)
