"""Reading, checking, converting and writing audio. Every user-supplied clip enters through `load_audio`."""
from __future__ import annotations

import io
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError
from .paths import require_file

MIN_SAMPLE_RATE = 4000  # Hz; below this a clip cannot carry speech or singing
MAX_SAMPLE_RATE = 384000  # Hz
MAX_DURATION_SECONDS = 30 * 60  # longest clip accepted by default (30 min)
SILENCE_PEAK = 1e-4  # peak amplitude below which a clip counts as silent (-80 dBFS)
MIN_INPUT_SECONDS = 0.25  # shorter clips hold no note to convert (and make per-clip overheads look absurd)
DECODE_BLOCK = 2**15  # frames per soundfile read (0.74 s at 44.1 kHz): a decode error mid-file keeps what came before
TRUNCATION_TOLERANCE = 0.01  # a decoded length this much (share) below the header's is not worth a warning
# libsndfile's header log for a chunk whose size disagrees with the file: "data : 882000 (should be 185220)"
_SHORT_CHUNK = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_LIBSNDFILE_PREFIX = re.compile(r"^Error\s*:\s*")  # libsndfile's messages start "Error : "
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # sizes streaming writers leave in a header: not a truncation
# File name endings taken as audio (soundfile reads most; m4a, aac, wma and webm need ffmpeg for audioread).
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".caf", ".w64",
                  ".au", ".snd", ".m4a", ".aac", ".wma", ".webm")
FFMPEG_SUFFIXES = (".m4a", ".aac", ".wma", ".webm")  # decoded only through audioread with ffmpeg


def ffmpeg_path() -> str | None:
    """The ffmpeg program audioread uses for m4a / aac / wma / webm, or None when it is not installed."""
    import shutil

    return shutil.which("ffmpeg")

AudioSource = Union[str, os.PathLike, bytes, tuple]
log = logging.getLogger("svc_core")


@dataclass(frozen=True)
class LoadedAudio:
    """A checked clip: float32 mono samples [N] at `sample_rate` Hz, and notes for the log (e.g. it ends early)."""

    wav: np.ndarray
    sample_rate: int
    name: str
    notes: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate


def _claimed_frames(f: sf.SoundFile) -> int:
    """Frames the file's header promises. libsndfile clamps `frames` of a WAV/AIFF whose data chunk runs past the
    end of the file to what is there, and notes the declared size in its log: that size is read back here."""
    frames = int(f.frames)
    match = _SHORT_CHUNK.search(f.extra_info or "")
    if match:
        declared, present = int(match.group(2)), int(match.group(3))
        if declared not in _PLACEHOLDER_SIZES and present > 0 and declared > present:
            return int(round(frames * declared / present))
    return frames


def _read_soundfile(handle, name: str) -> tuple[np.ndarray, int, tuple[str, ...]]:
    """Decode block by block with soundfile -> (float32 [N, C], rate, notes). A decode error after some audio, or
    fewer frames than the header promises, keeps what was read and says so in a note; an error before any audio
    is raised (the caller tries another decoder)."""
    with sf.SoundFile(handle) as f:
        sr, claimed = int(f.samplerate), _claimed_frames(f)
        blocks, error = [], None
        while True:
            try:
                block = f.read(DECODE_BLOCK, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                error = err
                break
            if not len(block):
                break
            blocks.append(block)
        got = sum(len(b) for b in blocks)
        if error is not None and got == 0:
            raise error
        data = np.concatenate(blocks) if blocks else np.zeros((0, f.channels), dtype=np.float32)
    note = ends_early_note(name, got, claimed, sr, error)
    return data, sr, (note,) if note else ()


def ends_early_note(name: str, got: int, claimed: int, sr: int, error: Exception | None = None) -> str | None:
    """The log line for a file that gave `got` of the `claimed` frames (or stopped with a decode `error`), else
    None. A stream file's header claim comes from `_claimed_frames`."""
    known = 0 < claimed < 2**40
    if error is None and not (known and got < claimed * (1 - TRUNCATION_TOLERANCE)):
        return None
    total = f" of {claimed / sr:.1f}" if known and claimed > got else ""
    reason = _LIBSNDFILE_PREFIX.sub("", str(error).strip()) if error is not None else ""
    why = f" (the decoder stopped: {reason})" if reason else ""
    return (f"'{name}' ends early: {got / sr:.1f}{total} s could be read{why}; the file may be truncated. "
            "Converting what was read.")


def header_note(f: sf.SoundFile, name: str) -> str | None:
    """ends_early_note for an open soundfile whose header promises more frames than the file holds (WAV, AIFF)."""
    return ends_early_note(name, int(f.frames), _claimed_frames(f), int(f.samplerate))


def _decode(source: AudioSource) -> tuple[np.ndarray, int, str, tuple[str, ...]]:
    """Decode to (float32 [N, channels], rate, name, notes) with soundfile, falling back to librosa/audioread for
    other containers."""
    if isinstance(source, tuple):
        data, sr = source
        return np.asarray(data), int(sr), "array", ()
    if isinstance(source, (bytes, bytearray)):
        name, handle = "uploaded audio", io.BytesIO(source)
    else:
        name = handle = require_file(source, "Audio file", AudioError)
    try:
        data, sr, notes = _read_soundfile(handle, Path(name).name)
        return data, sr, Path(name).name, notes
    except Exception as sf_err:  # soundfile raises LibsndfileError/RuntimeError/TypeError for odd inputs
        if isinstance(handle, io.BytesIO):
            raise AudioError(f"Could not read the {name}: {sf_err}. Supported: wav, flac, ogg, mp3, aiff.") from None
        try:
            with warnings.catch_warnings():  # librosa's "PySoundFile failed" and audioread's deprecation notes
                warnings.simplefilter("ignore", (UserWarning, FutureWarning, DeprecationWarning))
                import librosa

                data, sr = librosa.load(handle, sr=None, mono=False, dtype=np.float32)
            data = data[:, None] if data.ndim == 1 else data.T
            return data, int(sr), Path(name).name, ()
        except Exception:
            if Path(name).suffix.lower() in FFMPEG_SUFFIXES and ffmpeg_path() is None:
                raise AudioError(
                    f"Could not read '{Path(name).name}': {Path(name).suffix.lower()} files are decoded with ffmpeg, "
                    "which is not installed here (apt-get install ffmpeg, or brew / winget install ffmpeg); or "
                    "convert the file to wav or flac."
                ) from None
            raise AudioError(
                f"Could not read '{Path(name).name}' as audio ({sf_err}). It may be corrupt or in a format we "
                "cannot decode; convert it to wav or flac."
            ) from None


def to_mono_float(data: np.ndarray) -> np.ndarray:
    """[N], [N, C] (any dtype) -> float32 [N]: integers scaled to [-1, 1), channels averaged."""
    data = np.asarray(data)
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        if data.dtype.kind == "u":  # unsigned PCM (8-bit WAV) is centred on half the range
            half = (int(info.max) + 1) / 2
            data = (data.astype(np.float64) - half) / half
        else:
            data = data.astype(np.float64) / (int(info.max) + 1)
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        # soundfile gives [N, C]; a [C, N] array with few rows is transposed first
        if data.shape[0] <= 8 < data.shape[1]:
            data = data.T
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    elif data.ndim != 1:
        raise AudioError(f"Audio must be 1-D or 2-D (samples x channels); got shape {data.shape}.")
    return np.ascontiguousarray(data, dtype=np.float32)


def check_audio(wav: np.ndarray, sr: int, name: str = "audio", max_seconds: float = MAX_DURATION_SECONDS) -> None:
    """Raise AudioError for clips the pipeline cannot convert meaningfully."""
    check_blocks([wav], wav.size, sr, name, max_seconds)


def check_blocks(blocks: Iterable[np.ndarray], n_samples: int, sr: int, name: str = "audio",
                 max_seconds: float = MAX_DURATION_SECONDS) -> None:
    """`check_audio` for a clip of `n_samples` given as consecutive mono blocks (e.g. read from a file in turn):
    rate, emptiness and length are checked before the first block is read."""
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name} has a sample rate of {sr} Hz; supported rates are {MIN_SAMPLE_RATE}-"
                         f"{MAX_SAMPLE_RATE} Hz.")
    if n_samples == 0:
        raise AudioError(f"{name} contains no samples.")
    seconds = n_samples / sr
    if n_samples < int(MIN_INPUT_SECONDS * sr):
        length = f"{n_samples} sample{'s' if n_samples != 1 else ''} ({seconds:.3g} s)"
        raise AudioError(f"{name} is only {length} long; the shortest clip we convert is {MIN_INPUT_SECONDS:g} s. "
                         "Upload a longer recording.")
    if seconds > max_seconds:
        raise AudioError(f"{name} is {seconds / 60:.1f} minutes long; the limit is {max_seconds / 60:.0f} minutes. "
                         "Split it, or raise the limit.")
    peak, n_bad, first_bad, offset = 0.0, 0, -1, 0
    for block in blocks:
        bad = ~np.isfinite(block)
        if bad.any():
            if first_bad < 0:
                first_bad = offset + int(np.argmax(bad))
            n_bad += int(bad.sum())
        elif block.size:
            peak = max(peak, float(np.max(np.abs(block))))
        offset += block.size
    if n_bad:
        raise AudioError(f"{name} contains {n_bad} non-finite samples (NaN or infinity), the first at "
                         f"{first_bad / sr:.3f} s. Re-export the file from your editor.")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name} is silent (peak below -80 dBFS); there is nothing to convert.")


def read_audio(source: AudioSource, max_seconds: float = MAX_DURATION_SECONDS) -> LoadedAudio:
    """Read a file path, raw bytes or an (array, sr) tuple -> LoadedAudio (mono float32, checked, with notes such
    as "ends early" for a truncated file that still had usable audio)."""
    data, sr, name, notes = _decode(source)
    wav = to_mono_float(data)
    check_audio(wav, sr, name, max_seconds)
    return LoadedAudio(wav, sr, name, notes)


def load_audio(source: AudioSource, max_seconds: float = MAX_DURATION_SECONDS) -> tuple[np.ndarray, int]:
    """Read a file path, raw bytes or an (array, sr) tuple -> (float32 mono [N], sample rate in Hz), checked.
    Notes about the file (it ends early) go to the "svc_core" logger as warnings; `read_audio` returns them."""
    loaded = read_audio(source, max_seconds)
    for note in loaded.notes:
        log.warning(note)
    return loaded.wav, loaded.sample_rate


def resample(wav: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """High-quality rate conversion (soxr VHQ) of float32 [N]."""
    if orig_sr == new_sr:
        return wav
    return soxr.resample(wav, orig_sr, new_sr, quality="VHQ").astype(np.float32, copy=False)


def pcm16_round_trip(wav: np.ndarray, sr: int) -> np.ndarray:
    """Quantise through a 16-bit WAV in memory, as upstream does to every padded slice before inference."""
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format="WAV", subtype="PCM_16")
    buf.seek(0)
    out, _ = sf.read(buf, dtype="float32")
    return out


def output_subtype(path: str | os.PathLike) -> str | None:
    """soundfile subtype for an output file: wav is 16-bit PCM unless $SVC_WAV_FLOAT is set; others default."""
    return "FLOAT" if Path(path).suffix.lower() == ".wav" and os.environ.get("SVC_WAV_FLOAT") else None


def check_output_path(dst: str | os.PathLike, src: str | os.PathLike | None = None) -> Path:
    """Refuse, before any work, an output that is a folder, has no format soundfile can write, or is the input."""
    dst = Path(dst)
    if dst.is_dir():
        raise AudioError(f"The output '{dst}' is a folder; give a file name, e.g. {dst / 'converted.wav'}.")
    if dst.suffix[1:].upper() not in sf.available_formats():
        raise AudioError(f"Cannot write '{dst.name}': no audio format for '{dst.suffix or '(no extension)'}'. Use a "
                         ".wav or .flac output name.")
    if src is not None and dst.exists() and os.path.samefile(src, dst):
        raise AudioError(f"The output '{dst.name}' is the input file: converting would overwrite it. Choose another "
                         "output name.")
    return dst


def write_audio(path: str | os.PathLike, wav: np.ndarray, sr: int) -> None:
    """Write float audio; the format follows the extension (wav: 16-bit PCM unless FLOAT is wanted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wav, -1.0, 1.0), sr, subtype=output_subtype(path))
