"""Find the audio files of a dataset folder, decide the speakers and give every source an ASCII-safe name.

Layout rules: when top-level subfolders hold audio, each top-level subfolder is a speaker (nested folders
inside it belong to it). Otherwise the folder itself is one speaker named after it. Audio lying directly in the
input folder next to speaker folders is reported, not guessed about.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .settings import AUDIO_EXTENSIONS

MAX_NAME_CHARS = 60  # longest slug before the piece suffix


@dataclass(frozen=True)
class SourceFile:
    """One audio file to cut into clips."""

    path: Path  # absolute
    rel: str  # path relative to the input folder, '/'-separated (as shown to the user)
    speaker: str  # ASCII-safe speaker name = output folder = config spk key
    stem: str  # ASCII-safe, unique within the speaker; clips are <stem>_<k>.wav


@dataclass
class Discovery:
    """What the input folder holds."""

    sources: list[SourceFile]
    speakers: dict[str, str]  # ASCII-safe speaker name -> original folder name
    ignored: list[str]  # non-audio files (relative paths), left alone
    skipped: list[tuple[str, str]]  # (relative path, reason) for audio that cannot be placed


def _hash(text: str, n: int = 6) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


def slugify(text: str, fallback: str = "x") -> tuple[str, bool]:
    """ASCII-safe form of `text` ([A-Za-z0-9_.-], no leading dot) and whether it kept every letter.

    Spaces and punctuation become '_' (two names differing only there collide, and callers then add a hash);
    dropped non-ASCII letters or a truncated name count as lossy.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_text).strip("._-")
    slug = re.sub(r"_+", "_", slug)[:MAX_NAME_CHARS].rstrip("._-")
    lossless = ascii_text == text and len(slug) < MAX_NAME_CHARS and bool(slug)  # only punctuation was replaced
    return (slug or fallback), lossless


def _speaker_names(folders: list[str]) -> dict[str, str]:
    """Original folder name -> unique ASCII-safe speaker name ('Sänger' -> 'Sanger'; a hash suffix only when
    nothing ASCII is left or two folders would collide)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for folder in sorted(folders):
        slug, _ = slugify(folder, "")
        if not slug or slug in taken:
            slug = slug or "speaker"
            slug = f"{slug}_{_hash(folder)}"
        taken.add(slug)
        out[folder] = slug
    return out


def _walk_audio(root: Path, exclude: Path | None) -> tuple[list[Path], list[Path]]:
    """(audio files, other files) under `root`, sorted, not following symlinked folders, skipping `exclude`."""
    audio: list[Path] = []
    other: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            (audio if path.suffix.lower() in AUDIO_EXTENSIONS else other).append(path)
    return audio, other


def _stems(files: list[Path], base: Path) -> dict[Path, str]:
    """Unique ASCII-safe stems from each file's path below `base` (folders joined with '_')."""
    wanted: dict[Path, tuple[str, bool]] = {}
    for path in files:
        rel = path.relative_to(base).with_suffix("")
        text = "_".join(rel.parts)
        wanted[path] = slugify(text, "clip")
    counts: dict[str, int] = {}
    for slug, _ in wanted.values():
        counts[slug] = counts.get(slug, 0) + 1
    out: dict[Path, str] = {}
    for path, (slug, lossless) in wanted.items():
        if not lossless or counts[slug] > 1:
            slug = f"{slug}_{_hash(path.relative_to(base).as_posix())}"
        out[path] = slug
    return out


def discover(input_dir: Path, output_dir: Path | None = None) -> Discovery:
    """Scan `input_dir` (see module docstring). `output_dir`, when inside it, is not scanned."""
    root = Path(input_dir)
    exclude = Path(output_dir).resolve() if output_dir is not None else None
    audio, other = _walk_audio(root, exclude)
    top_level = [p for p in audio if p.parent == root]
    nested = [p for p in audio if p.parent != root]
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    skipped: list[tuple[str, str]] = []
    sources: list[SourceFile] = []
    if not nested:
        speaker = _speaker_names([root.name or "speaker"])[root.name or "speaker"]
        stems = _stems(top_level, root)
        sources = [SourceFile(p, rel(p), speaker, stems[p]) for p in top_level]
        speakers = {speaker: root.name} if sources else {}
    else:
        for p in top_level:
            skipped.append((rel(p), "audio directly in the input folder while speaker subfolders exist; move it "
                                    "into its speaker's folder"))
        by_folder: dict[str, list[Path]] = {}
        for p in nested:
            by_folder.setdefault(p.relative_to(root).parts[0], []).append(p)
        names = _speaker_names(list(by_folder))
        speakers = {names[f]: f for f in by_folder}
        for folder in sorted(by_folder):
            stems = _stems(by_folder[folder], root / folder)
            sources += [SourceFile(p, rel(p), names[folder], stems[p]) for p in by_folder[folder]]
    return Discovery(sources, speakers, [rel(p) for p in other], skipped)
