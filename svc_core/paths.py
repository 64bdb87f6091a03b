"""Checks on user-supplied file paths, shared by every loader so the messages read the same everywhere."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import SvcError


def require_file(path: str | os.PathLike, what: str, error: type[SvcError], empty_hint: str = "") -> str:
    """Return `path` as str if it names a non-empty file, else raise `error` saying what is wrong with it."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise error(f"{what} '{name}' does not exist.")
    if os.path.isdir(name):
        raise error(f"{what} '{name}' is a folder, not a file.")
    if os.path.getsize(name) == 0:
        raise error(f"{what} '{Path(name).name}' is empty (0 bytes){empty_hint}.")
    return name
