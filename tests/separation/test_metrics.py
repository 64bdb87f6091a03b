"""SDR (BSS Eval via fast-bss-eval) and SI-SDR against hand computations; silent references and estimates."""
import math

import numpy as np
import pytest

from svc_core.separation.metrics import CLAMP_DB, FILTER_TAPS, bss_sdr, score_stem, si_sdr, summarize

SR = 8000


def _coloured(n: int, seed: int) -> np.ndarray:
    """A music-like test signal: a few harmonics plus low-passed noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    tone = sum(np.sin(2 * np.pi * 220 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    return tone + noise


def test_exact_estimate_scores_the_ceiling_and_silence_the_floor():
    s = np.stack([_coloured(3 * SR, 0), _coloured(3 * SR, 1)])
    exact = score_stem(s, s, SR)
    assert exact.sdr == exact.si_sdr == CLAMP_DB and exact.frames == 6
    silent = score_stem(s, np.zeros_like(s), SR)
    assert silent.sdr == silent.si_sdr == -CLAMP_DB


def test_si_sdr_of_a_scaled_estimate_with_orthogonal_noise():
    """estimate = 0.5 s + n with n orthogonal to s: SI-SDR = 10 log10(|0.5 s|^2 / |n|^2), whatever the scale."""
    s = _coloured(SR, 2)
    n = np.random.default_rng(3).standard_normal(SR) * 0.2
    n -= (n @ s) / (s @ s) * s
    expected = 10 * math.log10(0.25 * (s @ s) / (n @ n))
    assert si_sdr(s, 0.5 * s + n) == pytest.approx(expected, abs=1e-9)
    assert si_sdr(s, 3.0 * (0.5 * s + n)) == pytest.approx(expected, abs=1e-9)


def test_bss_sdr_forgives_a_short_filter_but_not_noise():
    """estimate = h * s + n, h a 3-tap filter and n orthogonal to every delay 0..FILTER_TAPS-1 of s (projected out
    by least squares): SDR = 10 log10(|h * s|^2 / |n|^2)."""
    s = _coloured(SR, 4)
    delays = np.stack([np.concatenate([np.zeros(d), s[:SR - d]]) for d in range(FILTER_TAPS)], axis=1)  # [T, taps]
    n = np.random.default_rng(5).standard_normal(SR) * 0.3
    n -= delays @ np.linalg.lstsq(delays, n, rcond=None)[0]
    filtered = np.convolve(s, [0.6, 0.3, -0.1])[:SR]
    expected = 10 * math.log10((filtered @ filtered) / (n @ n))
    assert bss_sdr(s[None], (filtered + n)[None])[0] == pytest.approx(expected, abs=0.1)
    # white noise at a known SNR: SDR is that SNR (a 512-tap filter absorbs ~512/8000 of the noise: ~0.3 dB)
    noise = np.random.default_rng(6).standard_normal(SR)
    noise *= np.sqrt((s @ s) / (noise @ noise) / 10 ** (12 / 10))  # 12 dB
    assert bss_sdr(s[None], (s + noise)[None])[0] == pytest.approx(12.0, abs=0.5)


def test_silent_reference_frames_are_skipped_and_silent_songs_unscored():
    s = _coloured(4 * SR, 7)
    s[:2 * SR] = 0  # the voice enters after 2 s
    est = s + 0.1 * np.random.default_rng(8).standard_normal(4 * SR)  # noise everywhere, also in the silence
    score = score_stem(s, est, SR)
    assert score.frames == 2 and score.silent_frames == 2 and 10 < score.sdr < 40
    none = score_stem(np.zeros(SR), est[:SR], SR)
    assert math.isnan(none.sdr) and math.isnan(none.si_sdr) and none.frames == 0
    table = summarize([1.0, 3.0, math.nan, 8.0])
    assert table == {"mean": 4.0, "median": 3.0, "songs": 3, "unscored": 1}
    with pytest.raises(ValueError, match="differ in shape"):
        score_stem(s, est[:-1], SR)
