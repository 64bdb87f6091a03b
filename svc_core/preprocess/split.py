"""Train / validation split per speaker and the filelists upstream's trainer reads (one wav path per line)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Split:
    """Clip paths (relative to the output folder, '/'-separated) per list."""

    train: list[str]
    val: list[str]
    notes: list[str]  # e.g. speakers with too few clips for a validation set


def split_clips(clips_by_speaker: dict[str, list[str]], val_per_speaker: int = 2, seed: int = 1234) -> Split:
    """Pick `val_per_speaker` validation clips per speaker (seeded, independent of the other speakers); at least
    one clip of every speaker stays in training."""
    train: list[str] = []
    val: list[str] = []
    notes: list[str] = []
    for speaker in sorted(clips_by_speaker):
        clips = sorted(clips_by_speaker[speaker])
        n_val = min(val_per_speaker, max(0, len(clips) - 1))
        if n_val < val_per_speaker:
            notes.append(f"speaker '{speaker}' has {len(clips)} clip(s): {n_val} for validation instead of "
                         f"{val_per_speaker}")
        picked = set(random.Random(f"{seed}:{speaker}").sample(clips, n_val))
        val += [c for c in clips if c in picked]
        train += [c for c in clips if c not in picked]
    return Split(train, val, notes)


def filelist_lines(clips: list[str], output_dir: Path) -> str:
    """Absolute clip paths, one per line (works from any working directory)."""
    return "".join(f"{(output_dir / c).as_posix()}\n" for c in clips)
