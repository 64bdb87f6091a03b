"""The pitch-free posterior input: harmonics gone, the spectral envelope kept; the trainer can use it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.train.envelope import spectral_envelope
from svc_core.train.mel import linear_spectrogram
from svc_core.train.settings import TrainSettings
from svc_core.train.trainer import Trainer
from train_factories import tiny_settings

SR = 44100
N_FFT = 2048
BIN_HZ = SR / N_FFT


def _vowel(f0: float, formant: float = 1500.0) -> np.ndarray:
    """1 s harmonic tone whose harmonics are shaped by one broad resonance at `formant` Hz."""
    t = np.arange(SR) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / (1 + ((k * f0 - formant) / 400.0) ** 2)
            for k in range(1, int(8000 / f0)))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def _log_at(spec: torch.Tensor, hz: float, frame: int = 20) -> float:
    return float(torch.log(spec[0, int(round(hz / BIN_HZ)), frame]))


@pytest.mark.parametrize("f0", [110.0, 220.0, 440.0, 880.0])
def test_harmonic_ripple_removed_and_formant_kept(f0):
    spec = linear_spectrogram(torch.from_numpy(_vowel(f0))[None], N_FFT, 512, N_FFT)
    env = spectral_envelope(spec, torch.full((1, spec.shape[-1]), f0), SR)
    assert env.shape == spec.shape and torch.isfinite(env).all() and (env > 0).all()
    harmonics = [k * f0 for k in range(1, 40) if 400 < k * f0 < 4000]
    ripple = lambda s: np.mean([_log_at(s, h) - _log_at(s, h + f0 / 2) for h in harmonics])  # noqa: E731
    assert ripple(spec) > 2.0  # nepers: clear harmonic peaks in the spectrogram
    assert abs(ripple(env)) < 0.3  # and none left in the envelope
    # the resonance still shapes the envelope: louder at 1.5 kHz than at 6 kHz
    assert _log_at(env, 1500.0) - _log_at(env, 6000.0) > 1.0


def test_unvoiced_or_missing_f0_uses_a_default_cut():
    spec = torch.rand(2, N_FFT // 2 + 1, 7) + 0.01
    env = spectral_envelope(spec, torch.zeros(2, 7), SR)
    assert env.shape == spec.shape and torch.isfinite(env).all()


def test_settings_accept_only_known_inputs():
    with pytest.raises(ValueError, match="posterior_input"):
        TrainSettings(posterior_input="mel")


def test_trainer_steps_with_the_envelope_input(tiny_data, tmp_path):
    settings = tiny_settings(posterior_input="envelope")
    trainer = Trainer(tiny_data, tmp_path / "run", settings)
    batch = next(iter(trainer.train_loader))
    result = trainer.train_step(batch)
    assert not result.skipped and all(np.isfinite(v) for v in result.losses.values())
