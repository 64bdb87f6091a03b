"""so-vits-svc 4.1 post-processing on hand-made arrays: interpolation, transpose, resizing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.f0 import interpolate_unvoiced, resize_nearest, resize_with_gaps, transpose


def test_interior_gap_is_linear_in_time_and_edges_hold():
    raw = np.array([0, 100, 0, 0, 200, 0, 0], dtype=np.float32)
    f0, uv = interpolate_unvoiced(raw)
    np.testing.assert_allclose(f0, [100, 100, 100 + 100 / 3, 100 + 200 / 3, 200, 200, 200], rtol=1e-6)
    np.testing.assert_array_equal(uv, [0, 1, 0, 0, 1, 0, 0])
    assert f0.dtype == np.float32 and uv.dtype == np.float32


def test_voiced_frames_are_kept_exactly():
    raw = np.array([110.5, 0, 220.25, 330.125, 0, 0, 440.0])
    f0, uv = interpolate_unvoiced(raw)
    np.testing.assert_array_equal(f0[uv == 1], raw[raw > 0].astype(np.float32))
    np.testing.assert_allclose(f0[[1, 4, 5]], [165.375, 330.125 + 109.875 / 3, 330.125 + 2 * 109.875 / 3], rtol=1e-6)


def test_all_unvoiced_stays_zero():
    f0, uv = interpolate_unvoiced(np.zeros(9))
    assert f0.shape == (9,) and not f0.any() and not uv.any()


def test_single_voiced_frame_is_used_everywhere():
    f0, uv = interpolate_unvoiced(np.array([0, 0, 0, 256.0, 0]))
    np.testing.assert_array_equal(f0, np.full(5, 256.0, dtype=np.float32))
    np.testing.assert_array_equal(uv, [0, 0, 0, 1, 0])


def test_negative_values_count_as_unvoiced():
    f0, uv = interpolate_unvoiced(np.array([-5.0, 120.0, -1.0, 180.0]))
    np.testing.assert_array_equal(uv, [0, 1, 0, 1])
    np.testing.assert_allclose(f0, [120, 120, 150, 180])


def test_empty_input():
    f0, uv = interpolate_unvoiced(np.zeros(0))
    assert f0.shape == (0,) and uv.shape == (0,)


@pytest.mark.parametrize("semitones,factor", [(12, 2.0), (-12, 0.5), (3, 2 ** 0.25), (0, 1.0)])
def test_transpose(semitones, factor):
    f0 = np.array([0.0, 100.0, 440.0])
    np.testing.assert_allclose(transpose(f0, semitones), f0 * factor, rtol=1e-12)


@pytest.mark.parametrize("src,dst", [(10, 7), (7, 10), (100, 516), (516, 100), (5, 5), (1, 4)])
def test_resize_nearest_matches_torch_interpolate(src, dst):
    values = np.arange(1, src + 1, dtype=np.float32) * 1.5
    expected = torch.nn.functional.interpolate(torch.from_numpy(values)[None, None], size=dst, mode="nearest")
    np.testing.assert_array_equal(resize_nearest(values, dst), expected[0, 0].numpy())


def test_resize_with_gaps_zeroes_frames_touching_a_gap():
    source = np.array([100.0, 110.0, 0.0, 130.0, 140.0])
    out = resize_with_gaps(source, 10)  # positions 0, .5, 1, 1.5, ..., 4.5
    np.testing.assert_allclose(out[:3], [100, 105, 110])
    assert not out[3:6].any()  # 1.5, 2, 2.5 touch the gap
    np.testing.assert_allclose(out[6:9], [130, 135, 140])
    assert out[9] == 140  # past the end holds the last value (np.interp)
