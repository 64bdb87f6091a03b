"""Giving freed memory back to the operating system between pieces (glibc only; a no-op elsewhere).

glibc keeps freed heap blocks for reuse, so after loading a checkpoint or converting a long piece the process
stays as large as its peak. `release_free_memory()` (malloc_trim) returns those pages, which keeps the resident
size of a long conversion close to that of a short one. `limit_malloc_arenas()` caps glibc's per-thread heaps
(arenas), which the convolution threads otherwise multiply and fragment: measured on the full-size model, 2 threads,
peak RSS 1477 -> 1381 MB for a 40 s clip and 1468-1525 -> 1362 MB for a 600 s file, time unchanged (bench/README).
`import svc_core` applies it (MALLOC_ARENA_MAX in the environment, when set, wins).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

MALLOC_ARENAS = 2  # glibc heaps for all threads together (glibc's default: 8 per core)
_M_ARENA_MAX = -8  # mallopt parameter number (glibc malloc.h)


@functools.lru_cache(maxsize=2)
def _libc_function(name: str):
    """glibc's `name`, or None where there is none (musl, macOS, Windows)."""
    library = ctypes.util.find_library("c")
    if not library:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """mallopt(M_ARENA_MAX, count) unless MALLOC_ARENA_MAX is set; True when it ran. Takes effect for arenas made
    after the call, so it belongs before the first multi-threaded work (svc_core's import does it)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, int(count)))


def release_free_memory() -> bool:
    """malloc_trim(0); True when it ran."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True
