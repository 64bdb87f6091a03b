"""Validation metrics: pitch following of a generator's output against the f0 it was given."""
from __future__ import annotations

import math

import numpy as np
import pytest

from svc_core.cli import main as cli_main
from svc_core.f0.registry import get_predictor
from svc_core.train.validation import PitchFollowing, pitch_following, pool

SR = 44100
HOP = 512


def _tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(2 * np.pi * 2 * hz * t)).astype(np.float32)


@pytest.mark.parametrize("played, asked, follows", [(220.0, 220.0, True), (233.08, 220.0, False),
                                                     (440.0, 220.0, False)])
def test_pitch_following_on_tones(played, asked, follows):
    wave = _tone(played)
    frames = wave.shape[0] // HOP
    out = get_predictor("pm", hop_length=HOP, sampling_rate=SR).compute_raw_f0(wave, frames)
    result = pitch_following(np.full(frames, asked), np.ones(frames), out)
    assert result.frames > 0.8 * frames
    if follows:
        assert result.within_50c > 0.95 and result.median_cents < 10
    else:
        assert result.within_50c < 0.05
        assert result.median_cents == pytest.approx(1200 * math.log2(played / asked), abs=15)


def test_unvoiced_input_frames_are_not_scored():
    f0 = np.full(10, 200.0)
    uv = np.r_[np.ones(5), np.zeros(5)]
    out = np.r_[np.full(5, 200.0), np.full(5, 400.0)]  # wrong only where the input is unvoiced
    result = pitch_following(f0, uv, out)
    assert result.frames == 5 and result.within_50c == 1.0
    assert pitch_following(f0, np.zeros(10), out).frames == 0


def test_pool_weights_by_frames():
    pooled = pool([PitchFollowing(90, 1.0, 5.0), PitchFollowing(10, 0.0, 300.0), PitchFollowing(0, 0.0, math.nan)])
    assert pooled.frames == 100 and pooled.within_50c == pytest.approx(0.9)


def test_checkpoint_log_and_cli_report_pitch_following(trained_run, tiny_data, capsys):
    log = (trained_run["out"] / "train.log").read_text(encoding="utf-8")
    assert "saved G_4.pth" in log and "f0 within 50 c" in log
    assert cli_main(["validate-checkpoint", "--data", str(tiny_data), str(trained_run["out"] / "G_4.pth"),
                     "--clips", "1", "--max-frames", "64"]) == 0
    printed = capsys.readouterr().out
    assert "G_4.pth: validation mel L1" in printed and "f0 within 50 c" in printed
