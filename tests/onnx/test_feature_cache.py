"""The shared pipeline caches resampled audio, f0 and content units per piece: another transpose, speaker,
noise scale or cluster ratio does not run the f0 predictor or the content encoder again."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core import Svc


@pytest.fixture()
def counted(exported, encoder256, monkeypatch):
    e = exported["mix"]
    svc = Svc(e.model, e.config, encoder_path=str(encoder256))
    calls = {"f0": 0, "encoder": 0}
    predictor = svc._predictor("pm", 0.05)
    f0_fn, enc_fn = predictor.compute_f0_uv, svc.encoder.encode

    def f0_counted(*a, **k):
        calls["f0"] += 1
        return f0_fn(*a, **k)

    def enc_counted(*a, **k):
        calls["encoder"] += 1
        return enc_fn(*a, **k)

    monkeypatch.setattr(predictor, "compute_f0_uv", f0_counted)
    monkeypatch.setattr(svc.encoder, "encode", enc_counted)
    return svc, calls


def test_changing_transpose_speaker_noise_reuses_features(counted, clip):
    svc, calls = counted
    first = svc.slice_inference(*clip, "alto", f0_predictor="pm")
    pieces = calls["f0"]
    assert pieces >= 1 and calls["encoder"] == pieces
    shifted = svc.slice_inference(*clip, "tenor", transpose=5, noise_scale=0.2, f0_predictor="pm")
    assert calls == {"f0": pieces, "encoder": pieces}
    assert "f0" not in svc.last_times.seconds and "encoder" not in svc.last_times.seconds
    assert not np.allclose(first, shifted)
    again = svc.slice_inference(*clip, "alto", f0_predictor="pm")
    assert np.array_equal(first, again) and calls["f0"] == pieces


def test_cached_result_equals_uncached(counted, clip, exported, encoder256):
    svc, _ = counted
    svc.slice_inference(*clip, "alto", transpose=3, f0_predictor="pm")
    cached = svc.slice_inference(*clip, "alto", transpose=-2, f0_predictor="pm")
    e = exported["mix"]
    fresh = Svc(e.model, e.config, encoder_path=str(encoder256))
    fresh.cache.max_bytes = 0
    assert np.array_equal(cached, fresh.slice_inference(*clip, "alto", transpose=-2, f0_predictor="pm"))


def test_other_predictor_recomputes_f0_only(counted, clip):
    svc, calls = counted
    svc.slice_inference(*clip, "alto", f0_predictor="pm")
    before = dict(calls)
    svc.slice_inference(*clip, "alto", f0_predictor="dio")
    assert calls["encoder"] == before["encoder"]  # units are keyed by audio + frame count, not the predictor


def test_cache_is_bounded():
    from svc_core.pipeline import FeatureCache

    cache = FeatureCache(max_bytes=1000)
    for i in range(10):
        cache.put((i,), np.zeros(50, dtype=np.float32))  # 200 bytes each
    assert cache.get((0,)) is None and cache.get((9,)) is not None and cache._bytes <= 1000
