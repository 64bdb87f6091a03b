"""A small generated dataset folder for preprocessing tests: two speakers, nested folders, odd names, several
formats and rates, a long file to slice, and silent / corrupt / empty / too-short files."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_factories import sung_phrase

SR = 44100


def _write(path: Path, wav: np.ndarray, sr: int = SR, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr, **kw)


def build_dataset(root: Path) -> dict[str, Path]:
    """Two speakers, nested folders, odd names, several formats, one long file to slice, bad files."""
    alto, tenor = root / "alto", root / "tenor"
    files = {
        "plain": alto / "take 1.wav",
        "unicode": alto / "sub dir" / "nested" / "ünïcödé 歌.flac",
        "long": alto / "long.wav",
        "continuous": alto / "continuous.wav",
        "notes": alto / "notes.txt",
        "stereo48k": tenor / "stereo 48k.wav",
        "ogg": tenor / "song.ogg",
        "hot": tenor / "hot take.wav",
        "silent": tenor / "silent.wav",
        "corrupt": tenor / "corrupt.wav",
        "empty": tenor / "empty.wav",
        "short": tenor / "short.wav",
    }
    _write(files["plain"], sung_phrase(5.0, gap_every=10.0, seed=1), subtype="PCM_16")
    _write(files["unicode"], sung_phrase(6.0, sr=22050, gap_every=10.0, seed=2), 22050)
    _write(files["long"], sung_phrase(40.0, gap_every=4.0, gap=0.8, seed=3), subtype="PCM_16")
    _write(files["continuous"], sung_phrase(20.0, gap_every=100.0, seed=4), subtype="PCM_16")
    files["notes"].write_text("recorded in the kitchen\n", encoding="utf-8")
    left, right = sung_phrase(6.0, sr=48000, gap_every=10.0, seed=5), sung_phrase(6.0, sr=48000, gap_every=10.0, seed=6)
    _write(files["stereo48k"], np.stack([left, 0.5 * right], axis=1), 48000, subtype="PCM_24")
    _write(files["ogg"], sung_phrase(5.0, gap_every=10.0, seed=7), format="OGG", subtype="VORBIS")
    _write(files["hot"], np.clip(sung_phrase(5.0, gap_every=10.0, seed=8) * 8, -1, 1), subtype="PCM_16")
    _write(files["silent"], np.zeros(3 * SR, dtype=np.float32), subtype="PCM_16")
    files["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8)
    files["empty"].write_bytes(b"")
    _write(files["short"], sung_phrase(1.2, gap_every=10.0, seed=9), subtype="PCM_16")
    return files


def fingerprint(root: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha1, mtime_ns)} of every file under root."""
    return {p.relative_to(root).as_posix(): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}
