"""Writing a set of synthetic songs to a folder (THE interface the separation bench reads):

    DIR/<id>/mixture.wav, vocals.wav, accompaniment.wav   stereo 44.1 kHz float32 WAV; vocals + accompaniment ==
                                                          mixture (sample for sample, float32)
    DIR/manifest.json                                     {"format", "version", "split", "seconds", "items": [
                                                           {"id", "voice", "soundfont", "programs", "melody_seed",
                                                            "vocal_level_db", ...}, ...]}

Ids are `<split>_<index:05d>`. Reruns keep the clips already on disk (a clip is written to a temporary folder and
renamed when complete), so an interrupted run resumes; the manifest is rewritten at the end.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable, Optional

import numpy as np

from .song import make_song
from .splits import check_split

SET_FORMAT = "svc-separation-set"
SET_VERSION = 1
MANIFEST = "manifest.json"
STEMS = ("mixture", "vocals", "accompaniment")
META = "meta.json"


@dataclass
class SetSettings:
    """`n` clips of `split` (indices start..start+n-1), `seconds` long each, written to `out` by `jobs` processes;
    `subtype` "FLOAT" (the test-set format) or "PCM_16" (smaller training pools; the sum then holds to 1 LSB)."""

    out: str
    split: str = "test"
    n: int = 48
    seconds: float = 10.0
    start: int = 0
    jobs: int = 1
    subtype: str = "FLOAT"


def clip_id(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


def write_clip(settings: SetSettings, index: int) -> dict:
    """Render clip `index` into OUT/<id>/ unless it is there; returns its manifest entry."""
    import soundfile as sf

    cid = clip_id(settings.split, index)
    folder = os.path.join(settings.out, cid)
    meta_path = os.path.join(folder, META)
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            return json.load(fh)
    song = make_song(settings.split, index, settings.seconds)
    tmp = folder + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in STEMS:
        sf.write(os.path.join(tmp, f"{name}.wav"), getattr(song, name).T, song.sample_rate, subtype=settings.subtype,
                 format="WAV")
    entry = {"id": cid, **song.meta}
    with open(os.path.join(tmp, META), "w", encoding="utf-8") as fh:
        json.dump(entry, fh, indent=1)
    os.replace(tmp, folder)
    return entry


def _work(args: tuple[SetSettings, int]) -> dict:
    return write_clip(*args)


def write_set(settings: SetSettings, progress: Optional[Callable[[int, int], None]] = None) -> str:
    """Write (or complete) the set; returns the manifest path."""
    check_split(settings.split)
    os.makedirs(settings.out, exist_ok=True)
    indices = list(range(settings.start, settings.start + settings.n))
    jobs = [(settings, i) for i in indices]
    entries: list[dict] = []
    if settings.jobs > 1:
        with get_context("spawn").Pool(settings.jobs) as pool:
            for entry in pool.imap(_work, jobs):
                entries.append(entry)
                if progress:
                    progress(len(entries), len(jobs))
    else:
        for job in jobs:
            entries.append(_work(job))
            if progress:
                progress(len(entries), len(jobs))
    doc = {"format": SET_FORMAT, "version": SET_VERSION, "split": settings.split, "seconds": settings.seconds,
           "sample_rate": 44100, "subtype": settings.subtype, "stems": list(STEMS), "items": entries}
    path = os.path.join(settings.out, MANIFEST)
    with open(path + ".part", "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(path + ".part", path)
    return path


def read_clip(folder: str) -> dict[str, np.ndarray]:
    """{stem: float32 [2, N]} of one clip folder."""
    import soundfile as sf

    return {name: sf.read(os.path.join(folder, f"{name}.wav"), dtype="float32", always_2d=True)[0].T
            for name in STEMS}
