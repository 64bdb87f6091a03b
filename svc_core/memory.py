"""Giving freed memory back to the operating system between pieces (glibc only; a no-op elsewhere).

glibc keeps freed heap blocks for reuse, so after loading a checkpoint or converting a long piece the process
stays as large as its peak. `release_free_memory()` (malloc_trim) returns those pages, which keeps the resident
size of a long conversion close to that of a short one.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


def release_free_memory() -> bool:
    """malloc_trim(0); True when it ran."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
