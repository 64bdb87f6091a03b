"""Which faiss index belongs to an RVC voice file, found the way RVC WebUI pairs them.

RVC writes `logs/<exp>/added_IVF{n}_Flat_nprobe_1_{exp}_{v1|v2}.index` (the index to use) and
`trained_IVF...index` (the same clusters before the vectors were added: not usable alone), and its voice file to
`assets/weights/<exp>.pth`. Shared voices usually come as a folder with `<exp>.pth` and the `added_` file. The WebUI
picks the index whose name contains the voice's name; so do we, looking beside the voice file and in
`logs/<stem>/` relative to it and to the working directory.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelError

INDEX_SUFFIX = ".index"
ADDED_PREFIX = "added_"  # the searchable index RVC writes after training
TRAINED_PREFIX = "trained_"  # centroids only (ntotal 0): RVC's intermediate file


def _candidates(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == INDEX_SUFFIX
                  and not p.name.lower().startswith(TRAINED_PREFIX))


def pick_index(files: list[Path], stem: str) -> Path | None:
    """The index among `files` for a voice named `stem`: the only one, else the `added_` one(s) naming the voice;
    ModelError when several remain (the message lists them)."""
    if len(files) <= 1:
        return files[0] if files else None
    named = [p for p in files if stem.lower() in p.name.lower()]
    added = [p for p in (named or files) if p.name.lower().startswith(ADDED_PREFIX)]
    chosen = added or named
    if len(chosen) == 1:
        return chosen[0]
    raise ModelError(f"several index files could belong to '{stem}': {', '.join(p.name for p in files)}; keep one "
                     "(RVC's added_*.index) or give it with --index.")


def find_index(model_path: str | Path) -> Path | None:
    """The RVC index beside `model_path` (or in logs/<stem>/ as RVC keeps it), None when there is none."""
    model = Path(model_path)
    stem = model.stem
    for folder in (model.parent, model.parent / "logs" / stem, model.parent.parent / "logs" / stem,
                   Path("logs") / stem):
        found = pick_index(_candidates(folder), stem)
        if found is not None:
            return found
    return None


__all__ = ["ADDED_PREFIX", "INDEX_SUFFIX", "TRAINED_PREFIX", "find_index", "pick_index"]
