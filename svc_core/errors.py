"""Errors a user can act on. Their messages are written for people, and front ends show them as they are."""
from __future__ import annotations


class SvcError(Exception):
    """Base class: a problem with the user's input, files or settings (not a bug)."""


class AudioError(SvcError):
    """Audio that cannot be read or used: corrupt, empty, silent, non-finite, ..."""


class ModelError(SvcError):
    """A checkpoint or config that does not load or does not match itself."""


class UnsafeFileError(ModelError):
    """A file that would run code (or needs objects we do not allow) when unpickled."""


class FileLimitError(ModelError):
    """A file larger than we accept, or one that declares far more data than it holds (a possible zip bomb).

    Raised before anything in the file is decompressed, unpickled or parsed (svc_core/file_limits.py)."""


class EncoderMismatchError(ModelError):
    """The selected content encoder does not give the features the model was trained on."""


class SpeakerError(SvcError):
    """Unknown speaker name or id."""


class MissingWeightsError(SvcError):
    """A weights file a component needs is not there."""

    def __init__(self, component: str, path: str, where: str, alternatives: str = "") -> None:
        self.component = component
        self.path = path
        self.where = where
        msg = f"{component} needs the weights file '{path}', which was not found. {where}"
        if alternatives:
            msg += f" {alternatives}"
        super().__init__(msg)


class OptionError(SvcError):
    """An option value outside what the pipeline accepts."""
