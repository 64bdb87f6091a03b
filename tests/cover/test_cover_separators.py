"""A cover through real separators of the registry (the DSP baselines, the starter network), once they are part of
this build: the pipeline runs them by name, caches their stems, and the stems add up to the song."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cover.songs import VOICE_CONFIG, VOICE_MODEL
from svc_core.cover import CoverRequest, run_cover
from svc_core.separation.registry import separator_status

STATUS = separator_status()


@pytest.mark.parametrize("name", ["hpss", "repet-sim", "starter"])
def test_cover_with_a_registry_separator(song, tmp_path, name):
    if STATUS.get(name) is not None:
        pytest.skip(f"separator {name} {STATUS[name]}")
    path, stems = song
    request = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=name,
                           options={"f0_predictor": "pm"}, formats=("flac",))
    result = run_cover(request, tmp_path)
    vocals = sf.read(str(result.stems["original_vocals"]["flac"]), dtype="float32")[0].T
    accomp = sf.read(str(result.stems["accompaniment"]["flac"]), dtype="float32")[0].T
    assert vocals.shape == accomp.shape == stems["mixture"].shape
    residual = stems["mixture"] - vocals - accomp  # masks that share the mixture out (24-bit files)
    assert np.sqrt(np.mean(residual ** 2)) < 0.05 * np.sqrt(np.mean(stems["mixture"] ** 2))
    again = run_cover(request, tmp_path)
    assert again.separation_cached and not result.separation_cached
