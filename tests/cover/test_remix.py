"""Remix pieces: the BS.1770 meter on reference tones, the limiter's ceiling, mastering to a target loudness, the
reverb."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.cover.loudness import SILENT_LUFS, integrated_lufs
from svc_core.cover.remix import (CEILING_DBTP, MixSettings, add_reverb, limit, master, remix,
                                  true_peak_envelope)

SR = 44100


def sine(hz: float, amplitude: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_meter_reads_the_bs1770_reference_tone():
    # BS.1770: a 997 Hz sine at 0 dBFS peak in one channel reads -3.01 LKFS; -20 dB lower reads -23.01
    one = np.stack([sine(997, 0.1), np.zeros(3 * SR, np.float32)])
    assert integrated_lufs(one, SR) == pytest.approx(-23.01, abs=0.05)
    assert integrated_lufs(np.stack([sine(997, 0.1)] * 2), SR) == pytest.approx(-20.0, abs=0.05)
    assert integrated_lufs(np.zeros((2, SR), np.float32), SR) == SILENT_LUFS


def test_limiter_keeps_peaks_under_the_ceiling():
    rng = np.random.default_rng(1)
    x = np.stack([sine(220, 0.5), sine(330, 0.5)])
    for at in rng.integers(0, x.shape[1] - 100, 30):  # drum-like spikes far over full scale
        x[:, at:at + 40] += rng.uniform(1.0, 3.0)
    y = limit(x * 2.0, SR)
    ceiling = 10 ** (CEILING_DBTP / 20)
    assert np.abs(y).max() <= ceiling + 1e-6
    assert 20 * np.log10(true_peak_envelope(y).max()) <= CEILING_DBTP + 0.3  # inter-sample peaks too, nearly
    # far from any spike the gain is 1 (0.5 * 2 = 1.0 sines need a little, so compare a quiet signal instead)
    quiet = np.stack([sine(220, 0.3)] * 2)
    quiet[:, SR:SR + 40] += 2.0
    z = limit(quiet, SR)
    assert np.array_equal(z[:, : SR // 2], quiet[:, : SR // 2])  # untouched half a second before the spike
    assert np.abs(z).max() <= ceiling + 1e-6


def test_master_reaches_the_target_loudness_with_limiting():
    rng = np.random.default_rng(2)
    beats = np.zeros((2, 4 * SR), np.float32)
    for at in range(0, beats.shape[1], SR // 2):  # loud, peaky: -8 LUFS needs limiting
        beats[:, at:at + 3000] += rng.standard_normal(3000).astype(np.float32) * np.exp(-np.arange(3000) / 600)
    beats += np.stack([sine(110, 0.05, 4.0)] * 2)
    for target in (-14.0, -8.0):
        out, gain = master(beats, SR, target)
        assert abs(integrated_lufs(out, SR) - target) < 0.5
        assert np.abs(out).max() <= 10 ** (CEILING_DBTP / 20) + 1e-6


def test_reverb_adds_a_tail_at_the_same_loudness():
    click = np.zeros((2, 2 * SR), np.float32)
    click[:, 1000:1400] = sine(440, 0.5, 400 / SR)
    wet = add_reverb(click, SR, 0.5)
    assert wet.shape == click.shape
    tail = wet[:, SR // 2: SR]  # half a second after the sound: the room still rings
    assert np.sqrt(np.mean(tail ** 2)) > 1e-3
    assert not np.allclose(wet[0], wet[1])  # decorrelated channels
    assert add_reverb(click, SR, 0.0) is click


def test_remix_matches_the_converted_vocal_to_the_original():
    vocal = np.stack([sine(220, 0.2)] * 2)
    converted = np.stack([sine(233, 0.02)] * 2)  # 20 dB too quiet
    accomp = np.stack([sine(110, 0.1)] * 2)
    v, a, mix, report = remix(vocal, converted, accomp, SR, MixSettings(vocal_gain_db=-6, target_lufs=-16))
    assert report.match_gain_db == pytest.approx(20.0, abs=0.2)
    assert integrated_lufs(v, SR) == pytest.approx(integrated_lufs(vocal, SR) - 6, abs=0.2)
    assert np.array_equal(a, accomp)
    assert report.mix_lufs == pytest.approx(-16, abs=0.5)
