"""The optional harmonic loss: pitch-sensitive where the mel L1 is not, and wired into the trainer by c_harm."""
import math

import numpy as np
import torch

from svc_core.config import config_from_dict
from svc_core.train.losses import harmonic_loss
from svc_core.train.mel import MelParams, mel_spectrogram
from svc_core.train.settings import TrainSettings
from svc_core.train.trainer import Trainer
from train_factories import tiny_settings

SR = 44100
N = 10240  # samples: one training segment of upstream's 44.1 kHz configs


def _voice(f0: float, gain: float = 0.1, phase: float = 0.0) -> torch.Tensor:
    """[1, N] harmonic tone at f0 Hz with a 1/k spectrum (a crude voice)."""
    t = torch.arange(N, dtype=torch.float64) / SR
    wave = sum(torch.sin(2 * math.pi * f0 * k * t + phase * k) / k for k in range(1, int(4000 / f0)))
    return (gain * wave / 3).float()[None]


def test_identical_audio_scores_zero():
    y = _voice(110.0)
    assert float(harmonic_loss(y, y, SR)) == 0.0


def test_a_semitone_off_costs_more_than_a_phase_or_level_change():
    y = _voice(110.0)
    semitone = float(harmonic_loss(y, _voice(110.0 * 2 ** (1 / 12)), SR))
    phase = float(harmonic_loss(y, _voice(110.0, phase=1.0), SR))
    level = float(harmonic_loss(y, _voice(110.0, gain=0.07), SR))  # -3 dB
    assert semitone > 3 * max(phase, level)


def test_it_tells_a_low_voice_from_frame_rate_buzz_better_than_the_mel_l1():
    """103 Hz voice vs 86.13 Hz buzz (44100 / 512): relative to a 3 dB level change, the harmonic loss separates
    them far more clearly than the 44.1 kHz mel L1 the trainer uses."""
    params = MelParams()  # upstream's 44.1 kHz template: 80 mels, n_fft 2048
    y, buzz, quiet = _voice(103.0), _voice(SR / 512), _voice(103.0, gain=0.07)

    def mel_l1(a, b):
        return float(torch.mean(torch.abs(mel_spectrogram(a, params) - mel_spectrogram(b, params))))

    mel_ratio = mel_l1(y, buzz) / mel_l1(y, quiet)
    harm_ratio = float(harmonic_loss(y, buzz, SR)) / float(harmonic_loss(y, quiet, SR))
    assert harm_ratio > 1.5 * mel_ratio


def test_c_harm_comes_from_the_config_and_is_logged(tiny_data, tmp_path):
    from factories import make_config_dict

    doc = make_config_dict()
    doc["train"]["c_harm"] = 7.5
    assert TrainSettings.from_config(config_from_dict(doc)).c_harm == 7.5
    assert TrainSettings.from_config(config_from_dict(make_config_dict())).c_harm == 0.0
    trainer = Trainer(tiny_data, tmp_path / "run", tiny_settings(c_harm=10.0))
    result = trainer.train_step(next(iter(trainer.train_loader)))
    assert not result.skipped and np.isfinite(result.losses["harm"]) and result.losses["harm"] > 0
    plain = Trainer(tiny_data, tmp_path / "plain", tiny_settings())
    assert "harm" not in plain.train_step(next(iter(plain.train_loader))).losses
