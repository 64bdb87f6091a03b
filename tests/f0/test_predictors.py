"""Every predictor tracks a synthetic sweep, finds the silent gap, and returns exactly p_len frames."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.errors import AudioError, OptionError
from svc_core.f0 import default_threshold, get_predictor, list_predictors, predictor_status, transpose

from .conftest import HOP, SR, ToneCase

MAX_MEDIAN_CENTS = 50.0
EDGE_MARGIN_S = 0.06  # frames this close to the gap or the file edges are not scored
MIN_GAP_UNVOICED = {"harvest": 0.6}  # Harvest finds short pitch runs in the gap's -50 dB noise; others 0.75
FAST = ["pm", "dio", "harvest", "crepe-tiny", "fcpe"]

_cache: dict[str, object] = {}


def predictor(name: str):
    if name not in _cache:
        _cache[name] = get_predictor(name, hop_length=HOP, sampling_rate=SR)
    return _cache[name]


def score(case: ToneCase, f0: np.ndarray, uv: np.ndarray) -> tuple[float, float, float]:
    """(median |cents| error on clearly voiced frames, fraction of them voiced, fraction of gap core unvoiced)."""
    t = case.frame_times(len(f0))
    duration = len(case.wav) / SR
    in_gap = (t > case.gap[0]) & (t < case.gap[1])
    near_edge = (
        (np.abs(t - case.gap[0]) < EDGE_MARGIN_S) | (np.abs(t - case.gap[1]) < EDGE_MARGIN_S)
        | (t < EDGE_MARGIN_S) | (t > duration - EDGE_MARGIN_S)
    )
    voiced = ~in_gap & ~near_edge
    gap_core = in_gap & ~near_edge
    cents = 1200 * np.abs(np.log2(np.maximum(f0[voiced], 1e-3) / case.f0_at(t[voiced])))
    return float(np.median(cents)), float(uv[voiced].mean()), float(1 - uv[gap_core].mean())


def check_tracks(case: ToneCase, name: str) -> None:
    f0, uv = predictor(name).compute_f0_uv(case.wav)
    assert f0.shape == uv.shape == (len(case.wav) // HOP,)
    assert f0.dtype == np.float32 and uv.dtype == np.float32
    assert set(np.unique(uv)) <= {0.0, 1.0}
    assert np.all(f0 > 0), "f0 must be interpolated through unvoiced frames"
    median_cents, voiced_ok, gap_ok = score(case, f0, uv)
    assert median_cents < MAX_MEDIAN_CENTS, f"{name}: median error {median_cents:.1f} cents"
    assert voiced_ok > 0.95, f"{name}: only {voiced_ok:.0%} of the tone marked voiced"
    assert gap_ok > MIN_GAP_UNVOICED.get(name, 0.75), f"{name}: only {gap_ok:.0%} of the silent gap marked unvoiced"


@pytest.mark.parametrize("name", FAST)
def test_tracks_sweep_and_gap(tone: ToneCase, name: str):
    assert len(tone.wav) % HOP != 0
    check_tracks(tone, name)


def test_crepe_full_tracks_short_sweep(short_tone: ToneCase):
    check_tracks(short_tone, "crepe")


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("delta", [-3, 2])
def test_explicit_p_len_is_exact(tone: ToneCase, name: str, delta: int):
    wav = tone.wav[: SR // 2 + 123]
    p_len = len(wav) // HOP + delta
    f0, uv = predictor(name).compute_f0_uv(wav, p_len)
    assert f0.shape == uv.shape == (p_len,)
    raw = predictor(name).compute_raw_f0(wav, p_len)
    assert raw.shape == (p_len,)
    np.testing.assert_array_equal(uv, (raw > 0).astype(np.float32))


@pytest.mark.parametrize("name", FAST)
def test_silence_and_tiny_input_give_zeros(name: str):
    f0, uv = predictor(name).compute_f0_uv(np.zeros(SR // 4, dtype=np.float32))
    assert f0.shape == (SR // 4 // HOP,) and not f0.any() and not uv.any()
    f0, uv = predictor(name).compute_f0_uv(np.zeros(HOP - 1, dtype=np.float32))
    assert f0.shape == (0,) and uv.shape == (0,)


def test_bad_audio_is_refused():
    pm = predictor("pm")
    with pytest.raises(AudioError):
        pm.compute_f0_uv(np.zeros((2, 4096), dtype=np.float32))
    with pytest.raises(AudioError):
        pm.compute_f0_uv(np.full(4096, np.nan, dtype=np.float32))
    with pytest.raises(AudioError):
        pm.compute_f0_uv(np.zeros(4096, dtype=np.int16))


def test_voicing_threshold_defaults_and_overrides(tone: ToneCase):
    from svc_core.options import ConvertOptions

    assert ConvertOptions().f0_threshold is None  # each predictor's own default applies
    assert default_threshold("fcpe") == 0.4 and default_threshold("crepe") == default_threshold("rmvpe") == 0.05
    assert predictor("fcpe").threshold == 0.4
    loose = get_predictor("fcpe", hop_length=HOP, sampling_rate=SR, threshold=0.05)
    assert loose.threshold == 0.05
    _, uv_default = predictor("fcpe").compute_f0_uv(tone.wav)
    _, uv_loose = loose.compute_f0_uv(tone.wav)
    assert uv_default.sum() <= uv_loose.sum()  # a stricter threshold never adds voiced frames
    with pytest.raises(OptionError):
        default_threshold("yin")


def test_registry_names_and_errors():
    assert list_predictors() == ["pm", "dio", "harvest", "crepe", "crepe-tiny", "fcpe", "rmvpe"]
    with pytest.raises(OptionError, match="Choose one of: pm, dio"):
        get_predictor("yin")
    status = predictor_status()
    assert set(status) == set(list_predictors())
    for name in ["pm", "dio", "harvest", "crepe", "crepe-tiny", "fcpe"]:
        assert status[name] is None, f"{name}: {status[name]}"
    assert predictor("crepe-tiny").name == "crepe-tiny"


def test_pm_matches_upstream(parity_dir):
    """upstream 4.1-Stable pm on a real slice (with tran=3): same uv, f0 within float32 rounding."""
    data = np.load(parity_dir / "e2e_pm.npz")
    wav = data["seg0_wav44k"]
    ref_f0, ref_uv = data["seg0_f0"][0], data["seg0_uv"][0]
    f0, uv = predictor("pm").compute_f0_uv(wav)
    f0 = transpose(f0, 3)
    assert f0.shape == ref_f0.shape
    assert int((uv != ref_uv).sum()) == 0
    max_abs_hz = float(np.abs(f0 - ref_f0).max())
    assert max_abs_hz < 1e-3, f"max |f0 - upstream| = {max_abs_hz} Hz"


@pytest.mark.parametrize("group", [1024, 16])
def test_crepe_batching_matches_torchcrepe_predict(tone: ToneCase, monkeypatch, group: int):
    """Small network batches give exactly torchcrepe.predict's result for the same viterbi decode groups."""
    import torch

    from svc_core.f0 import crepe as crepe_module
    from svc_core.torchaudio_compat import ensure_torchaudio

    ensure_torchaudio()  # torchcrepe imports torchaudio at module level
    import torchcrepe

    monkeypatch.setattr(crepe_module, "DECODE_GROUP", group)
    monkeypatch.setattr(crepe_module, "NET_BATCH", 7)
    pred = predictor("crepe-tiny")
    audio = torch.from_numpy(tone.wav[: SR // 2])[None]
    pitch, periodicity = pred._pitch_periodicity(audio)
    assert torch.equal(pitch, pred._pitch_periodicity(audio)[0]), "crepe f0 must be reproducible"
    np.random.seed(crepe_module.DITHER_SEED)  # torchcrepe's +-20 cent dither comes from numpy's global RNG
    ref_pitch, ref_periodicity = torchcrepe.predict(
        audio, SR, HOP, pred.f0_min, pred.f0_max, model="tiny", decoder=torchcrepe.decode.viterbi,
        return_periodicity=True, batch_size=group, device="cpu", pad=True,
    )
    torch.testing.assert_close(pitch, ref_pitch)
    torch.testing.assert_close(periodicity, ref_periodicity)


def test_crepe_filters_follow_upstream_masked_pools():
    from svc_core.f0.crepe import _masked_mean3, _median3

    nan = float("nan")
    import torch

    x = torch.tensor([[0.5, 0.9, 0.1, 0.7, nan, 0.3, 0.8]])
    # edges: lower of the two real values; NaN is skipped (window 0.7, NaN, 0.3 -> lower middle 0.3)
    expected = torch.tensor([[0.5, 0.5, 0.7, 0.1, 0.3, 0.3, 0.3]])
    torch.testing.assert_close(_median3(x), expected)
    f0 = torch.tensor([[nan, 100.0, nan, nan, nan, 200.0, 300.0]])
    # a dropped frame next to a voiced one is re-filled; only all-NaN windows stay NaN
    expected = torch.tensor([[100.0, 100.0, 100.0, nan, 200.0, 250.0, 250.0]])
    torch.testing.assert_close(_masked_mean3(f0), expected, equal_nan=True)
