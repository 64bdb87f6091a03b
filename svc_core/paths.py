"""Checks on user-supplied file paths, shared by every loader so the messages read the same everywhere."""
from __future__ import annotations

import os
import re
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


def safe_file_name(text: str, limit: int = 60) -> str:
    """`text` as a piece of an output file name: letters, digits and ._+- only, at most `limit` characters."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_")[:limit] or "clip"
