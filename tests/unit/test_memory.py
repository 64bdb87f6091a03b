"""svc_core.memory: glibc's arena cap applied at import (unless MALLOC_ARENA_MAX says otherwise), malloc_trim."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from svc_core.memory import limit_malloc_arenas, release_free_memory

GLIBC = bool(ctypes.util.find_library("c")) and hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt")

# Counts glibc's heaps (arenas) via malloc_info after 8 torch threads have worked at once.
HEAPS = textwrap.dedent("""
    import ctypes, ctypes.util, os, sys, tempfile
    if sys.argv[1] == "import":
        import svc_core  # noqa: F401  (applies the cap)
    import torch
    torch.set_num_threads(8)
    for _ in range(20):
        torch.nn.functional.conv1d(torch.randn(1, 64, 20000), torch.randn(64, 64, 7), padding=3)
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    path = tempfile.mktemp()
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print(open(path).read().count("<heap nr="))
    os.unlink(path)
""")


def _heaps(mode: str, env: dict) -> int:
    out = subprocess.run([sys.executable, "-c", HEAPS, mode], check=True, capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[2])
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_import_caps_the_heaps_the_threads_make():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _heaps("import", env) <= 2


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() is True


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_release_free_memory_runs():
    assert release_free_memory() is True
