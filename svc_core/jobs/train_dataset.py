"""The dataset archive of a training job: a zip laid out as `<speaker>/<clip>.<audio suffix>`, checked before
anything is stored (API side) and again before it is unpacked (worker side).

`check_dataset_zip(path, limits)` reads only the zip's central directory: every member's name must be a plain
relative `speaker/clip.ext` path (no "..", no absolute or drive paths, no backslashes, no deeper folders), no
symlinks or other special files, only audio suffixes soundfile reads, at most `max_files` files and
`max_unpacked_bytes` declared bytes in total (the zip-bomb guard: zipfile never unpacks more than a member
declares). `extract_dataset(path, dest, limits)` checks again, unpacks, reads every clip's audio header and wants
at least one speaker and `min_total_seconds` of audio. Errors are DatasetError (code "invalid_dataset"),
UnsafeFileError ("unsafe_file"), AudioError ("unsupported_audio") or FileLimitError ("file_too_large").
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import AudioError, FileLimitError, UnsafeFileError
from ..file_limits import MAX_CENTRAL_DIRECTORY_BYTES, MAX_MEMBER_NAME_CHARS, MiB
from .errors import INVALID_DATASET, JobError

DATASET_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")  # soundfile reads them
IGNORED_PARTS = ("__MACOSX",)  # macOS Finder's resource-fork folder: skipped, not refused
IGNORED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
SPEAKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_MAX_MB = "SVC_TRAIN_MAX_DATASET_MB"  # the server's override of DEFAULT_MAX_UNPACKED_BYTES (MiB)
DEFAULT_MAX_UNPACKED_BYTES = 2048 * MiB  # all clips together, unpacked (about 3 h of 44.1 kHz 16-bit stereo)
DEFAULT_MAX_FILES = 5000
DEFAULT_MIN_TOTAL_SECONDS = 10.0  # preprocessing keeps clips of >= 2 s and wants some to validate with
EXTRACT_CHUNK_BYTES = 1 * MiB


class DatasetError(JobError):
    """The archive is readable but is not a training dataset (layout, speakers, too little audio)."""

    code, status = INVALID_DATASET, 400


@dataclass(frozen=True)
class DatasetLimits:
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_files: int = DEFAULT_MAX_FILES
    min_total_seconds: float = DEFAULT_MIN_TOTAL_SECONDS

    @classmethod
    def from_env(cls) -> "DatasetLimits":
        """The defaults, with $SVC_TRAIN_MAX_DATASET_MB (MiB) when set."""
        value = os.environ.get(ENV_MAX_MB, "").strip()
        if not value:
            return cls()
        return cls(max_unpacked_bytes=int(float(value) * MiB))


@dataclass
class DatasetSummary:
    """What an archive holds: clips per speaker (member names), declared bytes, seconds once extracted."""

    speakers: dict[str, list[str]] = field(default_factory=dict)
    unpacked_bytes: int = 0
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return sum(len(v) for v in self.speakers.values())


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's checked relative path; None for what is skipped (folders, Finder files)."""
    name = info.filename
    if len(name) > MAX_MEMBER_NAME_CHARS or "\x00" in name:
        raise UnsafeFileError(f"The dataset archive has a member with an unusable name ({name[:80]!r}...).")
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeFileError(f"The dataset archive member '{name}' has an absolute or Windows path; use "
                              "speaker/clip.wav paths.")
    path = PurePosixPath(name)
    if any(part in ("..", ".") for part in path.parts):
        raise UnsafeFileError(f"The dataset archive member '{name}' points outside the archive's folder.")
    mode = info.external_attr >> 16  # unix mode when made on unix; its file type bits may be 0 (zipfile.writestr)
    if stat.S_ISLNK(mode):
        raise UnsafeFileError(f"The dataset archive member '{name}' is a symbolic link; send the audio itself.")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnsafeFileError(f"The dataset archive member '{name}' is not a plain file.")
    if info.is_dir() or any(p in IGNORED_PARTS for p in path.parts) or path.name in IGNORED_NAMES:
        return None
    return path


def check_dataset_zip(archive: Path, limits: DatasetLimits | None = None) -> DatasetSummary:
    """The archive's layout and declared sizes checked (nothing unpacked) -> its summary."""
    limits = limits or DatasetLimits.from_env()
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DatasetError(f"The dataset is not a readable zip archive ({err}); zip a folder holding one "
                           "folder per speaker.") from None
    if sum(len(i.filename) + 46 + len(i.extra) for i in infos) > MAX_CENTRAL_DIRECTORY_BYTES:
        raise FileLimitError("The dataset archive's table of contents is too large.")
    summary = DatasetSummary()
    for info in infos:
        path = _member_path(info)
        if path is None:
            continue
        if len(path.parts) != 2:
            raise DatasetError(f"'{info.filename}' is not at speaker/clip depth: lay the archive out as "
                               "<speaker>/<clip>.wav (one folder per speaker, no sub-folders).")
        speaker, clip = path.parts
        if not SPEAKER_NAME.match(speaker):
            raise DatasetError(f"The speaker folder '{speaker}' needs a plain name (letters, digits, _ . -, "
                               "at most 64 characters).")
        if path.suffix.lower() not in DATASET_SUFFIXES:
            raise AudioError(f"'{info.filename}' is not an audio file we train on; the archive may hold only "
                             f"{', '.join(s.lstrip('.') for s in DATASET_SUFFIXES)} files.")
        if info.flag_bits & 0x1:
            raise DatasetError(f"'{info.filename}' is encrypted; send an archive without a password.")
        summary.speakers.setdefault(speaker, []).append(info.filename)
        summary.unpacked_bytes += info.file_size
        if summary.files > limits.max_files:
            raise FileLimitError(f"The dataset archive holds more than {limits.max_files} files.")
        if summary.unpacked_bytes > limits.max_unpacked_bytes:
            raise FileLimitError(f"The dataset unpacks to more than {limits.max_unpacked_bytes / MiB:.0f} MB; "
                                 "send fewer or shorter clips.")
    if not summary.speakers:
        raise DatasetError("The dataset archive holds no audio: put one folder per speaker with its clips in it.")
    return summary


def extract_dataset(archive: Path, dest: Path, limits: DatasetLimits | None = None) -> DatasetSummary:
    """Check, then unpack the archive's clips into `dest/<speaker>/<clip>` (created) and read each clip's audio
    header -> the summary with the total seconds. A failure removes `dest`."""
    import soundfile as sf

    limits = limits or DatasetLimits.from_env()
    summary = check_dataset_zip(archive, limits)
    dest.mkdir(parents=True, exist_ok=False)
    try:
        written = 0
        with zipfile.ZipFile(archive) as zf:
            for names in summary.speakers.values():
                for name in names:
                    target = dest.joinpath(*PurePosixPath(name).parts)
                    target.parent.mkdir(exist_ok=True)
                    with zf.open(name) as src, open(target, "xb") as out:
                        while chunk := src.read(EXTRACT_CHUNK_BYTES):
                            written += len(chunk)
                            if written > limits.max_unpacked_bytes:  # declared sizes bound this; belt and braces
                                raise FileLimitError("The dataset unpacks to more than it declares.")
                            out.write(chunk)
                    try:
                        info = sf.info(str(target))
                    except Exception as err:  # noqa: BLE001 - soundfile's errors vary by format
                        raise AudioError(f"'{name}' cannot be read as audio ({err}).") from None
                    if info.frames <= 0 or info.samplerate <= 0:
                        raise AudioError(f"'{name}' holds no audio.")
                    summary.seconds += info.frames / info.samplerate
        if summary.seconds < limits.min_total_seconds:
            raise DatasetError(f"The dataset holds {summary.seconds:.1f} s of audio; training needs at least "
                               f"{limits.min_total_seconds:.0f} s (clips of 2 s or more).")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return summary
