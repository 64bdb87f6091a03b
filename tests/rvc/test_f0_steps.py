"""RVC's f0 front-end (svc_core.rvc.f0) against f0_steps.npz, made with RVC's own Pipeline.get_f0."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.errors import OptionError
from svc_core.rvc.f0 import coarse_pitch, rvc_f0, rvc_f0_raw

CASES = [("pm", 0, 3), ("pm", 3, 3), ("harvest", 3, 3), ("harvest", 0, 0)]


@pytest.fixture(scope="module")
def steps(parity_dir):
    return np.load(parity_dir / "rvc" / "f0_steps.npz")


@pytest.mark.parametrize("method,key,radius", CASES)
def test_f0_matches_rvc_exactly(steps, method, key, radius):
    name = f"{method}_up{key}_fr{radius}"
    coarse, hz = rvc_f0_raw(method, steps["audio_pad"], int(steps["p_len"]), key, radius)
    np.testing.assert_array_equal(hz, steps[name + "_hz"])  # pm: p_len frames; harvest: p_len + 1
    np.testing.assert_array_equal(coarse, steps[name + "_coarse"])


def test_pipeline_form_is_cut_to_p_len(steps):
    p_len = int(steps["p_len"])
    coarse, hz = rvc_f0("harvest", steps["audio_pad"], p_len, 3, 3)
    assert coarse.dtype == np.int64 and hz.dtype == np.float32 and coarse.shape == hz.shape == (p_len,)
    np.testing.assert_array_equal(coarse, steps["harvest_up3_fr3_coarse"][:p_len])
    np.testing.assert_array_equal(hz, steps["harvest_up3_fr3_hz"][:p_len].astype(np.float32))
    assert (hz == 0).any(), "unvoiced frames stay 0 Hz (no interpolation)"


def test_coarse_mapping_matches_fixture_and_edges(steps):
    for method, key, radius in CASES:
        name = f"{method}_up{key}_fr{radius}"
        np.testing.assert_array_equal(coarse_pitch(steps[name + "_hz"].copy()), steps[name + "_coarse"])
    edges = coarse_pitch(np.array([0.0, 10.0, 50.0, 1100.0, 5000.0]))
    np.testing.assert_array_equal(edges, [1, 1, 1, 255, 255])


def test_unknown_method_is_refused(steps):
    with pytest.raises(OptionError, match="dio"):
        rvc_f0("dio", steps["audio_pad"], 10, 0, 3)
