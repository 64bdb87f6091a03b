"""REST API tests on real servers (tests/api_support.py): the standalone API served by uvicorn in a thread on a
free loopback port, with the shipped starter voice (voices/starter) and the real engine, torch on one thread."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from api_support import CLIP_SECONDS, ROOT, ApiServer, start_api


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """The first CLIP_SECONDS of examples/singing_slt.flac as a 44.1 kHz mono wav."""
    import soundfile as sf

    audio, rate = sf.read(ROOT / "examples" / "singing_slt.flac", dtype="float32", always_2d=True)
    path = tmp_path_factory.mktemp("clips") / "phrase.wav"
    sf.write(path, np.ascontiguousarray(audio.mean(axis=1)[: int(CLIP_SECONDS * rate)]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[ApiServer]:
    """One open loopback API server (no tokens) for a test module."""
    server = start_api(tmp_path_factory.mktemp("api") / "work")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def make_api():
    return start_api


