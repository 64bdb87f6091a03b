"""Augmentation keeps length and rate and measurably changes pitch / formants / timing."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.phonevec import augment
from svc_core.phonevec.features import mel_basis, MelSettings

SR = 16000


def _vowel(f0: float = 130.0, formants: tuple[float, ...] = (700.0, 1200.0, 2600.0),
           seconds: float = 1.0) -> np.ndarray:
    """A synthetic voiced vowel: impulse train through second-order resonators."""
    from scipy.signal import lfilter

    n = int(seconds * SR)
    x = np.zeros(n)
    x[:: int(SR / f0)] = 1.0
    for f in formants:
        r = np.exp(-np.pi * 90.0 / SR)
        x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _median_f0(x: np.ndarray) -> float:
    f0 = augment.analyse(x).f0
    return float(np.median(f0[f0 > 0]))


def _centroid(x: np.ndarray) -> float:
    """Spectral-envelope centroid (Hz) below 4 kHz from WORLD's cheaptrick."""
    sp = augment.analyse(x).sp
    env = sp[sp.shape[0] // 4: 3 * sp.shape[0] // 4].mean(0)
    freqs = np.linspace(0, SR / 2, len(env))
    band = freqs < 4000
    return float((freqs[band] * env[band]).sum() / env[band].sum())


def test_pitch_shift_keeps_length_and_formants() -> None:
    x = _vowel()
    y = augment.world_transform(x, SR, pitch_ratio=1.5)
    assert y.shape == x.shape and y.dtype == np.float32
    assert _median_f0(y) / _median_f0(x) == pytest.approx(1.5, rel=0.05)
    # cheaptrick's envelope is sampled at the harmonics, so a 1.5x pitch moves it a little (~8 %), far less than
    # the formant warp below
    assert _centroid(y) / _centroid(x) == pytest.approx(1.0, abs=0.12)


def test_formant_warp_keeps_pitch_and_moves_envelope() -> None:
    x = _vowel()
    for alpha in (1.2, 0.85):
        y = augment.world_transform(x, SR, formant_alpha=alpha)
        assert y.shape == x.shape
        assert _median_f0(y) == pytest.approx(_median_f0(x), rel=0.03)
        assert _centroid(y) / _centroid(x) == pytest.approx(alpha, rel=0.04)


def test_singing_contour_and_voiced_stretch() -> None:
    rng = np.random.default_rng(0)
    contour = augment.singing_contour(400, rng, 200.0)
    semis = 12 * np.log2(contour / 200.0)
    assert contour.shape == (400,) and semis.min() > -8.5 and semis.max() < 8.5 and semis.std() > 1.0
    x = _vowel(seconds=0.5)
    w = augment.analyse(x)
    stretched = augment.stretch_voiced(w, 2.0)
    assert len(stretched.f0) == pytest.approx(2 * np.count_nonzero(w.f0) + np.count_nonzero(w.f0 == 0), abs=2)
    y = augment.world_transform(x, SR, contour=augment.singing_contour(len(stretched.f0), rng, 250.0), world=stretched)
    assert len(y) == stretched.n_samples > 1.8 * len(x)


def test_waveform_augmentations() -> None:
    rng = np.random.default_rng(1)
    x = _vowel()
    assert len(augment.speed(x, 1.25)) == pytest.approx(len(x) / 1.25, abs=2)
    assert _median_f0(augment.speed(x, 1.25)) / _median_f0(x) == pytest.approx(1.25, rel=0.05)
    g = augment.gain(x, -6.0)
    assert np.allclose(g, x * 10 ** (-6 / 20), atol=1e-6)
    noisy = augment.add_noise(x, 10.0, rng)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((noisy - x).astype(np.float64) ** 2))
    assert noisy.shape == x.shape and snr == pytest.approx(10.0, abs=0.2)
    wet = augment.reverb(x, rng, rt60=0.4, wet=0.5)
    assert wet.shape == x.shape and not np.allclose(wet, x) and np.abs(wet).max() <= 0.99
    a = augment.add_noise(x, 20.0, np.random.default_rng(3), color=1.0)
    assert np.array_equal(a, augment.add_noise(x, 20.0, np.random.default_rng(3), color=1.0))


def test_vtlp_mel_warp_moves_energy_up() -> None:
    s = MelSettings()
    plain, warped = mel_basis(s), mel_basis(s, 1.15)
    assert plain.shape == warped.shape == (80, 257)
    spectrum = np.zeros(257)
    spectrum[40] = 1.0  # 1250 Hz
    assert np.argmax(warped @ spectrum) > np.argmax(plain @ spectrum)
