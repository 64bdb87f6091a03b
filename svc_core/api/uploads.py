"""Multipart uploads read as a stream: file parts go straight to disk, counted as they arrive, and the request is
refused (413 `file_too_large`) the moment a file passes its limit, before the rest of the body is read; a body that
declares more than the limits allow in Content-Length is refused before any of it is read.

`receive_form(request, folder, limits)` -> ReceivedForm (files on disk under `folder`, text fields). Then the same
checks as the page: `check_audio_upload` / `check_song_upload` (svc_core.ui.job_io.check_audio_file,
svc_core.ui.cover_job.check_song_file, and the file's audio header read with soundfile).
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from starlette.requests import ClientDisconnect
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import AudioError
from ..jobs import errors as codes
from .errors import problem

MiB = 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, part headers and text fields beyond the files
MAX_FIELD_BYTES = 64 * 1024  # one text field (the options JSON)
MAX_FIELDS = 16
SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class FormLimits:
    """Limits of one multipart request: bytes per file, bytes of all files, number of files, file field names."""

    max_file_bytes: int
    max_total_bytes: int
    max_files: int
    file_fields: tuple[str, ...]  # form fields that may carry files


@dataclass
class ReceivedFile:
    field: str
    filename: str  # the client's file name, reduced to a safe base name
    path: Path
    size: int  # bytes


@dataclass
class ReceivedForm:
    folder: Path
    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def file(self, name: str) -> ReceivedFile | None:
        return next((f for f in self.files if f.field == name), None)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def safe_filename(name: str, fallback: str = "upload") -> str:
    """A client's file name as a plain base name (no folders, no odd characters), keeping its suffix."""
    base = SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip(" .")
    if len(base) > MAX_NAME_CHARS:
        suffix = Path(base).suffix[:16]
        base = base[: MAX_NAME_CHARS - len(suffix)] + suffix
    return base or fallback


def _too_large(what: str, limit: int) -> Exception:
    return problem(codes.FILE_TOO_LARGE, f"{what} is over the limit of {limit / MiB:.0f} MB.", 413)


class _FormReader:
    """python-multipart callbacks writing file parts to disk with running byte counts."""

    def __init__(self, folder: Path, limits: FormLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.form = ReceivedForm(folder)
        self.total = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field = ""
        self._data = bytearray()
        self._handle: BinaryIO | None = None
        self._current: ReceivedFile | None = None

    def on_part_begin(self) -> None:
        self._disposition, self._data = b"", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise problem(codes.BAD_REQUEST, "A multipart part has no name in its Content-Disposition.", 400)
        self._field = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            if len(self.form.fields) >= MAX_FIELDS:
                raise problem(codes.BAD_REQUEST, f"More than {MAX_FIELDS} form fields.", 400)
            return
        if self._field not in self.limits.file_fields:
            raise problem(codes.UNKNOWN_FIELD, f"Unexpected file field '{self._field}'; files go in: "
                          f"{', '.join(self.limits.file_fields)}.", 400)
        if len(self.form.files) >= self.limits.max_files:
            raise problem(codes.BAD_REQUEST, f"At most {self.limits.max_files} file(s) in one request.", 400)
        name = safe_filename(options[b"filename"].decode("utf-8", "replace"))
        part_dir = self.folder / str(len(self.form.files))  # one folder per file: names may repeat
        part_dir.mkdir(parents=True)
        self._current = ReceivedFile(self._field, name, part_dir / name, 0)
        self._handle = open(self._current.path, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._current is None:
            if len(self._data) + len(chunk) > MAX_FIELD_BYTES:
                raise problem(codes.BAD_REQUEST, f"The form field '{self._field}' is over "
                              f"{MAX_FIELD_BYTES // 1024} KB.", 400)
            self._data.extend(chunk)
            return
        self._current.size += len(chunk)
        self.total += len(chunk)
        if self._current.size > self.limits.max_file_bytes:
            raise _too_large(f"'{self._current.filename}'", self.limits.max_file_bytes)
        if self.total > self.limits.max_total_bytes:
            raise _too_large("The uploaded files together", self.limits.max_total_bytes)
        assert self._handle is not None
        self._handle.write(chunk)

    def on_part_end(self) -> None:
        if self._current is None:
            self.form.fields[self._field] = self._data.decode("utf-8", "replace")
            return
        self.close_file()
        self.form.files.append(self._current)
        self._current = None

    def close_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


async def receive_form(request: Request, folder: Path, limits: FormLimits) -> ReceivedForm:
    """Read a multipart/form-data body into `folder` (created; removed again on any error)."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise problem(codes.BAD_REQUEST, "Send the request as multipart/form-data (curl -F ...).", 400)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_total_bytes + FORM_OVERHEAD_BYTES:
        raise _too_large("The request body", limits.max_total_bytes)
    folder.mkdir(parents=True, exist_ok=False)
    reader = _FormReader(folder, limits)
    callbacks = {name: getattr(reader, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished")}
    try:
        parser = MultipartParser(params[b"boundary"], callbacks)
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as err:
        reader.close_file()
        shutil.rmtree(folder, ignore_errors=True)
        raise problem(codes.BAD_REQUEST, f"The multipart body cannot be read: {err}.", 400) from None
    except ClientDisconnect:
        reader.close_file()
        shutil.rmtree(folder, ignore_errors=True)
        raise problem(codes.BAD_REQUEST, "The upload was interrupted.", 400) from None
    except BaseException:
        reader.close_file()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return reader.form


def probe_audio(path: Path, max_seconds: float | None = None) -> None:
    """The file's audio header reads (soundfile) and, when it says, is not over `max_seconds`; files soundfile does
    not read (m4a, aac, wma, webm, video) are decoded by the job, which reports their problems."""
    import soundfile as sf

    from ..audio import FFMPEG_SUFFIXES

    try:
        info = sf.info(str(path))
    except Exception as err:  # LibsndfileError / RuntimeError / TypeError for odd input
        if path.suffix.lower() in FFMPEG_SUFFIXES:
            return
        raise AudioError(f"'{path.name}' cannot be read as audio ({err}); send a wav, flac, ogg or mp3 file.") \
            from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"'{path.name}' holds no audio.")
    if max_seconds and info.frames / info.samplerate > max_seconds:
        raise problem(codes.AUDIO_TOO_LONG, f"'{path.name}' is {info.frames / info.samplerate / 60:.1f} minutes "
                      f"long; the limit is {max_seconds / 60:.0f} minutes.", 413)


def check_audio_upload(received: ReceivedFile, max_bytes: int, max_seconds: float | None = None) -> Path:
    """The page's checks of a clip to convert (extension and size), then its audio header."""
    from ..ui.job_io import check_audio_file

    path = check_audio_file(str(received.path), max_bytes)
    probe_audio(path, max_seconds)
    return path


def check_song_upload(received: ReceivedFile, max_bytes: int, max_seconds: float | None = None) -> Path:
    """The page's checks of a song to cover (audio or video extension, size), then its audio header."""
    from ..song_io import VIDEO_SUFFIXES
    from ..ui.cover_job import check_song_file

    path = check_song_file(str(received.path), max_bytes, VIDEO_SUFFIXES)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        probe_audio(path, max_seconds)
    return path
