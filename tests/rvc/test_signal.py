"""RVC's signal steps (svc_core.rvc.signal) against the e2e fixtures made with RVC's own pipeline."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.rvc.signal import (RvcWindows, butter_coefficients, change_rms, frame_rms, highpass, peak_limit,
                                 plan_segments, to_int16)

FILES = ["e2e_v2_40k_f0", "e2e_v1_40k_f0", "e2e_v2_40k_f0_split"]
SPLIT_WINDOWS = RvcWindows(x_pad=1, x_query=1, x_center=2, x_max=3)
TGT_SR = 40000


def _load(parity_dir, name):
    return np.load(parity_dir / "rvc" / f"{name}.npz")


def test_butter_coefficients(parity_dir):
    steps = np.load(parity_dir / "rvc" / "f0_steps.npz")
    np.testing.assert_array_equal(butter_coefficients()[0], steps["butter_b"])
    np.testing.assert_array_equal(butter_coefficients()[1], steps["butter_a"])


@pytest.mark.parametrize("name", FILES)
def test_highpass_segments_rms_int16(parity_dir, name):
    data = _load(parity_dir, name)
    audio_hp = highpass(data["audio16k"])
    assert audio_hp.dtype == np.float64
    np.testing.assert_allclose(audio_hp, data["audio_hp"], rtol=0, atol=1e-12)
    segments = plan_segments(data["audio_hp"], SPLIT_WINDOWS if "split" in name else RvcWindows())
    for i, segment in enumerate(segments):
        assert list(segment.audio_range) == list(data[f"vc{i}_audio0_range"])
        assert [segment.f0_start, segment.f0_stop] == list(data[f"vc{i}_pitch_range"])
    assert f"vc{len(segments)}_audio0_range" not in data
    trim = TGT_SR * 1
    out = np.concatenate([data[f"vc{i}_infer_o"][0, 0][trim:-trim] for i in range(len(segments))])
    mixed = change_rms(data["audio_hp"], 16000, out.copy(), TGT_SR, 0.25)
    np.testing.assert_array_equal(change_rms(data["audio_hp"], 16000, out.copy(), TGT_SR, 0.25, block=7777), mixed)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, data["rms_out"], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(to_int16(data["rms_out"]), data["output_int16"])
    assert np.abs(to_int16(mixed).astype(np.int32) - data["output_int16"]).max() <= 1


def test_split_points_are_quiet_samples():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16000 * 100) * 0.1
    audio[16000 * 37: 16000 * 37 + 800] *= 1e-4  # a quiet stretch near the first 38 s mark
    segments = plan_segments(audio)
    assert len(segments) == 3  # marks at 38 s and 76 s
    cut = segments[1].start
    assert 16000 * 37 - 160 <= cut <= 16000 * 37 + 800
    assert segments[0].stop == cut + 2 * 16000 + 160
    assert segments[-1].stop == len(audio) + 2 * 16000
    longest = 16000 * (38 + 2 * 6 + 2) + 160  # x_center + 2 x_query between cuts, + 2 x_pad + one frame
    assert all(s.stop - s.start <= longest for s in segments)


def test_peak_limit():
    quiet = np.full(10, 0.5, dtype=np.float32)
    assert peak_limit(quiet) is quiet
    loud = np.array([0.0, 2.0, -1.0], dtype=np.float32)
    limited = peak_limit(loud)
    assert limited.dtype == np.float32 and abs(float(np.abs(limited).max()) - 0.99) < 1e-6
    assert to_int16(loud).max() == int(np.float32(2.0) * np.float32(32768 * 0.99 / 2.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_frame_rms_is_librosas(dtype):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(1)
    y = (rng.standard_normal(16000 * 70 + 123) * np.linspace(0, 1, 16000 * 70 + 123)).astype(dtype)  # > 1 block
    for frame, hop in ((16000, 8000), (40000, 20000), (960, 480)):
        expected = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)[0]
        np.testing.assert_array_equal(frame_rms(y, frame, hop), expected)
