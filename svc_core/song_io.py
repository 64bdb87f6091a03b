"""Songs in and stems out: `read_song` (stereo float32, length checked before decoding, audio of video files through
ffmpeg), stem writers for wav / flac / mp3 (soundfile) and a zip of the results."""
from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import soundfile as sf

from . import audio as audio_io
from .errors import AudioError, OptionError
from .paths import require_file
from .separation.base import MAX_SONG_CHANNELS, song_channels

COVER_MAX_SECONDS = 10 * 60  # longest song a cover takes: ~12 stereo float32 copies of it are in memory at once
# (stems, converted vocal, mix), ~100 MB per minute of song
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".flv", ".wmv", ".mpg", ".mpeg", ".ts")
FFMPEG_RATE = 44100  # Hz: the audio track of a video is decoded to this rate
FFMPEG_TIMEOUT = 600  # s, for extracting the audio track of one video
STEM_SUBTYPES = {"wav": "PCM_24", "flac": "PCM_24", "mp3": "MPEG_LAYER_III"}  # soundfile subtype per format
MP3_BITRATE_MODE = "CONSTANT"
MP3_COMPRESSION = 0.2  # soundfile compression_level for mp3: 0 best quality .. 1 smallest (~256 kbit/s at 0.2)
STORED_IN_ZIP = (".mp3", ".flac")  # already compressed: stored, not deflated


def _check_length(frames: int, sr: int, channels: int, name: str, max_seconds: float) -> None:
    if channels > MAX_SONG_CHANNELS:
        song_channels(np.zeros((channels, 1), np.float32), f"song '{name}'")  # AudioError naming the count
    if sr > 0 and frames / sr > max_seconds:
        raise AudioError(f"'{name}' is {frames / sr / 60:.1f} minutes long; a cover takes songs up to "
                         f"{max_seconds / 60:.0f} minutes. Cut it (e.g. ffmpeg -i in -t 600 out.wav) and cover the "
                         "parts.")


def _peek(path: Path, max_seconds: float) -> None:
    """Refuse a too long or >2-channel file from its header alone (soundfile-readable files; others are checked
    after decoding)."""
    try:
        info = sf.info(str(path))
    except Exception:  # not a soundfile format (m4a ...): the decoder says what is wrong
        return
    _check_length(int(info.frames), int(info.samplerate), int(info.channels), path.name, max_seconds)


def extract_video_audio(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """The audio track of a video file -> (float32 [N, C], rate) via the ffmpeg program (decoded up to
    max_seconds + 1 s, so an over-long video is refused without decoding all of it)."""
    ffmpeg = audio_io.ffmpeg_path()
    if ffmpeg is None:
        raise AudioError(f"'{path.name}' is a video file; its audio track is extracted with ffmpeg, which is not "
                         "installed here (apt-get install ffmpeg, or brew / winget install ffmpeg). Or extract the "
                         "audio yourself (e.g. to .wav or .flac) and give that.")
    cmd = [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-vn", "-map", "0:a:0", "-t", f"{max_seconds + 1:g}",
           "-ar", str(FFMPEG_RATE), "-f", "wav", "-acodec", "pcm_f32le", "-"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"Extracting the audio of '{path.name}' took over {FFMPEG_TIMEOUT} s; extract it yourself "
                         "and give the audio file.") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"Could not extract an audio track from '{path.name}' with ffmpeg"
                         f"{': ' + why[-1] if why else ''}. Does the video have sound?")
    data, sr = sf.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
    return data, int(sr)


def read_song(source, max_seconds: float = COVER_MAX_SECONDS) -> tuple[np.ndarray, int]:
    """A song file (path, bytes) or (array, sr) -> (float32 [2, N], sample rate in Hz).

    Mono is duplicated; more than two channels are refused (song_channels); a song longer than `max_seconds` is
    refused from the file header before it is decoded (mp3 / ogg / wav / flac / aiff); videos are read through
    ffmpeg when it is installed. The audio is checked as any clip (rate, not empty, not silent, finite)."""
    notes: tuple[str, ...] = ()
    if isinstance(source, (str, os.PathLike)):
        path = Path(require_file(source, "Song file", AudioError))
        name = path.name
        if path.suffix.lower() in VIDEO_SUFFIXES:
            data, sr = extract_video_audio(path, max_seconds)
        else:
            _peek(path, max_seconds)
            data, sr, name, notes = audio_io._decode(path)
    else:
        data, sr, name, notes = audio_io._decode(source)
        name = "the song" if name in ("array", "uploaded audio") else name
    data = np.asarray(data)
    if data.ndim == 2 and data.shape[0] <= 8 < data.shape[1]:  # an array given as [C, N]
        data = data.T
    if data.ndim == 2:
        _check_length(data.shape[0], int(sr), data.shape[1], name, max_seconds)
    stereo = song_channels(_as_float(data).T if data.ndim == 2 else _as_float(data), f"song '{name}'")
    audio_io.check_audio(stereo.mean(axis=0), int(sr), f"'{name}'", max_seconds)
    if not np.isfinite(stereo).all():
        raise AudioError(f"'{name}' contains non-finite samples (NaN or infinity); re-export it.")
    for note in notes:
        audio_io.log.warning(note)
    return stereo, int(sr)


def _as_float(data: np.ndarray) -> np.ndarray:
    """[N] or [N, C] of any dtype -> float32 of the same shape (integers scaled to [-1, 1))."""
    data = np.asarray(data)
    if data.dtype.kind in "iu":
        if data.ndim == 1:
            return audio_io.to_mono_float(data)
        return np.stack([audio_io.to_mono_float(data[:, c]) for c in range(data.shape[1])], axis=1)
    return data.astype(np.float32, copy=False)


def song_name(source, default: str = "song") -> str:
    """A file-name-safe stem for outputs made from `source`."""
    from .paths import safe_file_name

    if isinstance(source, (str, os.PathLike)):
        return safe_file_name(Path(source).stem) or default
    return default


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    formats = tuple(formats)
    for fmt in formats:
        if fmt not in STEM_SUBTYPES:
            raise OptionError(f"Unknown export format '{fmt}'; choose from {', '.join(STEM_SUBTYPES)}.")
    return formats


def write_stem(path: str | os.PathLike, audio: np.ndarray, sr: int) -> Path:
    """Write float32 [C, N] audio; the format from the suffix (wav / flac: 24-bit, mp3: ~256 kbit/s CBR).
    Samples are clipped to [-1, 1] (the mix is limited below that before it comes here)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in STEM_SUBTYPES:
        raise OptionError(f"Cannot write '{path.name}': stems are written as {', '.join(STEM_SUBTYPES)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(audio, np.float32), -1.0, 1.0).T  # soundfile takes [N, C]
    extra = {"bitrate_mode": MP3_BITRATE_MODE, "compression_level": MP3_COMPRESSION} if fmt == "mp3" else {}
    tmp = path.with_name(path.name + ".part")
    with sf.SoundFile(str(tmp), "w", sr, data.shape[1], STEM_SUBTYPES[fmt], format=fmt.upper() if fmt != "mp3"
                      else "MP3", **extra) as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def write_zip(path: str | os.PathLike, files: Iterable[Path], root: Optional[Path] = None) -> Path:
    """One zip of `files` (names relative to `root`, else bare names); compressed formats are stored as they are."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for f in files:
            f = Path(f)
            arcname = str(f.relative_to(root)) if root is not None else f.name
            kind = zipfile.ZIP_STORED if f.suffix.lower() in STORED_IN_ZIP else zipfile.ZIP_DEFLATED
            zf.write(f, arcname, compress_type=kind)
    os.replace(tmp, path)
    return path
