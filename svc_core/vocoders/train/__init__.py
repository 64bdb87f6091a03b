"""`python -m svc_core train-vocoder`: train or fine-tune the openvpi-layout NSF-HiFiGAN mel vocoder on a
preprocessed dataset (clips + f0 caches), with HiFi-GAN's losses and so-vits' discriminator.

    from svc_core.vocoders.train import VocoderTrainer, VocoderTrainSettings
    VocoderTrainer("dataset", "logs/nsf_hifigan", VocoderTrainSettings(steps=2000)).fit()
"""
from __future__ import annotations

from .settings import SIZE_PRESETS, VocoderTrainSettings, vocoder_config_for
from .trainer import VocoderTrainer, VocoderTrainSummary

__all__ = ["SIZE_PRESETS", "VocoderTrainSettings", "VocoderTrainer", "VocoderTrainSummary", "vocoder_config_for"]
