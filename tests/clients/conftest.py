"""The HTTP clients against a real API server: the standalone API on the shipped starter voice (tests/api_support.py
start_api: uvicorn in a thread on a free loopback port, the real engine, torch on one thread)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from api_support import CLIP_SECONDS, ROOT, ApiServer, start_api

LONG_SECONDS = 40.0  # a clip long enough to be cancelled while it runs


def _write_clip(path: Path, seconds: float) -> Path:
    """The first `seconds` of examples/singing_slt.flac (looped when shorter) as a 44.1 kHz mono 16-bit wav."""
    import soundfile as sf

    audio, rate = sf.read(ROOT / "examples" / "singing_slt.flac", dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    frames = int(seconds * rate)
    mono = np.tile(mono, -(-frames // len(mono)))[:frames]
    sf.write(path, np.ascontiguousarray(mono), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return _write_clip(tmp_path_factory.mktemp("clips") / "phrase.wav", CLIP_SECONDS)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Path:
    return _write_clip(tmp_path_factory.mktemp("clips") / "long.wav", LONG_SECONDS)


@pytest.fixture(scope="session")
def api(tmp_path_factory) -> Iterator[ApiServer]:
    """One open loopback API server (no tokens) for the client tests."""
    server = start_api(tmp_path_factory.mktemp("clients") / "work")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_url(api: ApiServer) -> str:
    """The server's root URL (the clients add /api/v1 themselves)."""
    return api.url.removesuffix("/api/v1")
