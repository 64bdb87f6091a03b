"""Stable error codes: what a job's `error.code` and the REST API's `{"error": {"code", "message"}}` say.

Clients branch on the code; the message is for people and may change. `error_code(exc)` maps the engine's errors.
"""
from __future__ import annotations

from ..errors import (AudioError, FileLimitError, ModelError, OptionError, SpeakerError, SvcError,
                      UnsafeFileError)

BAD_REQUEST = "bad_request"
INVALID_OPTION = "invalid_option"
UNKNOWN_FIELD = "unknown_field"
UNSUPPORTED_AUDIO = "unsupported_audio"
FILE_TOO_LARGE = "file_too_large"
AUDIO_TOO_LONG = "audio_too_long"
VOICE_NOT_FOUND = "voice_not_found"
SPEAKER_NOT_FOUND = "speaker_not_found"
MODEL_ERROR = "model_error"
UNSAFE_FILE = "unsafe_file"
JOB_NOT_FOUND = "job_not_found"
RESULT_NOT_FOUND = "result_not_found"
NOT_FINISHED = "not_finished"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
TOKEN_REVOKED = "token_revoked"
BUSY = "busy"
CANCELLED = "cancelled"
WORKER_LOST = "worker_lost"
TIME_LIMIT = "time_limit"
INTERNAL = "internal"
INVALID_DATASET = "invalid_dataset"  # a training job's dataset archive (train_dataset.py)

CODES = (BAD_REQUEST, INVALID_OPTION, UNKNOWN_FIELD, UNSUPPORTED_AUDIO, FILE_TOO_LARGE, AUDIO_TOO_LONG,
         VOICE_NOT_FOUND, SPEAKER_NOT_FOUND, MODEL_ERROR, UNSAFE_FILE, JOB_NOT_FOUND, RESULT_NOT_FOUND, NOT_FINISHED,
         UNAUTHORIZED, FORBIDDEN, TOKEN_REVOKED, BUSY, CANCELLED, WORKER_LOST, TIME_LIMIT, INTERNAL, INVALID_DATASET)


class JobError(SvcError):
    """An error with a stable code (and the HTTP status the REST API answers it with)."""

    code = BAD_REQUEST
    status = 400

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class JobNotFound(JobError):
    code, status = JOB_NOT_FOUND, 404


class VoiceNotFound(JobError):
    code, status = VOICE_NOT_FOUND, 404


class ResultNotFound(JobError):
    code, status = RESULT_NOT_FOUND, 404


class BlobNotFound(JobError):
    code, status = RESULT_NOT_FOUND, 404


class UnknownField(JobError, OptionError):
    """A request field the job kind does not have (the message names it and lists the known ones)."""

    code, status = UNKNOWN_FIELD, 400


class NotFinished(JobError):
    code, status = NOT_FINISHED, 409


# most specific first: FileLimitError and UnsafeFileError are ModelErrors
_BY_CLASS: tuple[tuple[type[BaseException], str, int], ...] = (
    (OptionError, INVALID_OPTION, 400),
    (AudioError, UNSUPPORTED_AUDIO, 400),
    (FileLimitError, FILE_TOO_LARGE, 413),
    (UnsafeFileError, UNSAFE_FILE, 400),
    (SpeakerError, SPEAKER_NOT_FOUND, 400),
    (ModelError, MODEL_ERROR, 400),
)


def error_code(exc: BaseException) -> str:
    """The stable code of an exception: JobError's own, the engine's error classes by kind, else "internal"."""
    return error_status(exc)[0]


def error_status(exc: BaseException) -> tuple[str, int]:
    """(code, HTTP status) of an exception."""
    if isinstance(exc, JobError):
        return exc.code, exc.status
    from ..ui.limits import JobLimitError  # the page's time budget (no Gradio import there)

    if isinstance(exc, JobLimitError):
        return TIME_LIMIT, 400
    for cls, code, status in _BY_CLASS:
        if isinstance(exc, cls):
            return code, status
    if isinstance(exc, SvcError):
        return BAD_REQUEST, 400
    return INTERNAL, 500
