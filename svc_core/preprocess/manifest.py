"""manifest.json of a prepared dataset: each clip's source file and time range, plus what a rerun may reuse.

Also the small atomic-write helpers every output file goes through.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .cache import cache_paths
from .diffcache import diff_cache_paths
from .clips import SourceResult
from .discover import SourceFile

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def write_text_if_changed(path: Path, text: str, backup: bool = False) -> bool:
    """Write `text` atomically unless the file already holds it. With `backup`, a different existing file is
    first renamed to '<name>.bak' (or '<name>.bak2', ...). Returns True when the file was written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
        exists = True
    except FileNotFoundError:
        exists = False
    path.parent.mkdir(parents=True, exist_ok=True)
    if backup and exists:
        n, bak = 1, path.with_name(path.name + ".bak")
        while bak.exists():
            n += 1
            bak = path.with_name(f"{path.name}.bak{n}")
        os.replace(path, bak)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def read_manifest(output_dir: Path) -> dict[str, Any]:
    """The previous run's manifest, or an empty one when absent or unreadable."""
    try:
        doc = json.loads((output_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("version") == MANIFEST_VERSION:
            return doc
    except (OSError, ValueError):
        pass
    return {"version": MANIFEST_VERSION, "sources": []}


def write_manifest(output_dir: Path, input_dir: Path, clip_settings: dict[str, Any], results: list[SourceResult],
                   features: dict[str, Any] | None) -> None:
    doc = {"version": MANIFEST_VERSION, "input_dir": str(input_dir), "clip_settings": clip_settings,
           "features": features, "sources": [r.to_json() for r in results]}
    write_text_if_changed(output_dir / MANIFEST_NAME, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def reusable(previous: dict[str, Any], clip_settings: dict[str, Any], src: SourceFile,
             output_dir: Path) -> SourceResult | None:
    """The previous result for `src` when the file, the speaker, the clip settings and every clip are unchanged."""
    if previous.get("clip_settings") != clip_settings:
        return None
    for doc in previous.get("sources", []):
        if doc.get("source") != src.rel:
            continue
        try:
            old = SourceResult.from_json(doc)
            stat = src.path.stat()
        except (TypeError, OSError):
            return None
        if (old.status != "ok" or old.size != stat.st_size or old.mtime_ns != stat.st_mtime_ns
                or old.speaker != src.speaker):
            return None
        if not all((output_dir / c.clip).is_file() for c in old.clips):
            return None
        if any(not c.clip.startswith(f"{src.speaker}/{src.stem}_") for c in old.clips):
            return None
        return old
    return None


def remove_stale_clips(previous: dict[str, Any], current: list[SourceResult], output_dir: Path) -> list[str]:
    """Delete clips (and their cache files) that an earlier run wrote and this run no longer produces.

    Only paths recorded in our own manifest and lying inside output_dir are touched. Returns the clips removed.
    """
    keep = {c.clip for r in current for c in r.clips}
    root = output_dir.resolve()
    removed: list[str] = []
    for doc in previous.get("sources", []):
        for clip in doc.get("clips", []) if isinstance(doc, dict) else []:
            rel = clip.get("clip") if isinstance(clip, dict) else None
            if not isinstance(rel, str) or rel in keep:
                continue
            path = (output_dir / rel).resolve()
            if not path.is_relative_to(root) or path.suffix != ".wav":
                continue
            for p in [path, *cache_paths(path).values(), *diff_cache_paths(path).values()]:
                p.unlink(missing_ok=True)
            removed.append(rel)
    return removed
