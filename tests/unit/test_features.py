"""Frame features against upstream's numbers (parity fixtures) and their defining properties."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.features import frame_volume, mix_loudness_envelope, stretch_units
from svc_core.resample import sinc_resample


@pytest.fixture(scope="module")
def e2e(parity_dir):
    return np.load(parity_dir / "e2e_pm.npz")


def test_volume_matches_upstream(e2e):
    vol = frame_volume(torch.from_numpy(e2e["seg0_wav44k"])).numpy()
    assert vol.shape == e2e["seg0_vol"][0].shape
    assert np.abs(vol - e2e["seg0_vol"][0]).max() < 1e-6


def test_nearest_stretch_matches_upstream(e2e):
    units = torch.from_numpy(e2e["seg0_units_raw"][0])
    out = stretch_units(units, e2e["seg0_c"].shape[-1], "nearest").numpy()
    assert np.array_equal(out, e2e["seg0_c"][0])


def test_resampler_matches_upstream(e2e):
    out = sinc_resample(torch.from_numpy(e2e["seg0_wav44k"]), 44100, 16000).numpy()
    assert out.shape == e2e["seg0_wav16k"].shape
    assert np.abs(out - e2e["seg0_wav16k"]).max() < 5e-6


def test_left_stretch_picks_floor_index():
    units = torch.arange(7, dtype=torch.float32)[None].repeat(3, 1)  # [3, 7]
    out = stretch_units(units, 12, "left")
    assert out.shape == (3, 12)
    assert out[0].tolist() == [float(np.floor(i * 7 / 12)) for i in range(12)]
    with pytest.raises(ValueError, match="unknown unit_interpolate_mode"):
        stretch_units(units, 12, "cubic")


def test_resampler_lengths_and_passband():
    t = np.arange(44100) / 44100
    tone = torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    out = sinc_resample(tone, 44100, 16000)
    assert out.shape[-1] == 16000
    ref = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.abs(out.numpy()[200:-200] - ref[200:-200]).max() < 2e-3
    assert sinc_resample(tone[None, None], 44100, 22050).shape == (1, 1, 22050)


def test_loudness_envelope_mix():
    sr = 8000
    t = np.arange(4 * sr) / sr
    src = (np.sin(2 * np.pi * 200 * t) * np.linspace(0.05, 0.8, len(t))).astype(np.float32)
    out = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    assert mix_loudness_envelope(src, out, sr, 1.0) is out
    imposed = mix_loudness_envelope(src, out.copy(), sr, 0.0)
    mid = slice(sr, 3 * sr)
    ratio = np.sqrt(np.mean(imposed[mid][: sr // 2] ** 2)) / np.sqrt(np.mean(imposed[mid][-sr // 2:] ** 2))
    ratio_src = np.sqrt(np.mean(src[mid][: sr // 2] ** 2)) / np.sqrt(np.mean(src[mid][-sr // 2:] ** 2))
    assert ratio == pytest.approx(ratio_src, rel=0.15)
