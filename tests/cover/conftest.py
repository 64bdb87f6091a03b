from __future__ import annotations

import pytest

from svc_core.separation import registry
from cover.songs import KnownStems, synthetic_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """(path of a synthetic stereo song, its stems)."""
    path = tmp_path_factory.mktemp("song") / "song.wav"
    return path, synthetic_song(path)


@pytest.fixture
def known_separator(song, monkeypatch):
    """Registers separator "known" that returns the synthetic song's true stems."""
    monkeypatch.setattr(KnownStems, "known", song[1])
    monkeypatch.setitem(registry._REGISTRY, "known", registry.SeparatorEntry(
        "cover.songs.KnownStems", "Known stems (test)", "dsp"))
    return "known"
