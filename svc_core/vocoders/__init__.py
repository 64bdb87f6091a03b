"""Mel vocoders for shallow diffusion: the openvpi NSF-HiFiGAN (`nsf-hifigan`, `nsf-hifigan-log10`) and the
enhancer that re-vocodes so-vits output with it.

    from svc_core.vocoders import load_mel_vocoder
    vocoder = load_mel_vocoder("pretrain/nsf_hifigan")      # folder with `model` + config.json
    mel = vocoder.extract(audio[None])                       # [1, T, 128] natural-log mel
    wav = vocoder.decode(mel, f0, chunk_frames=vocoder.DEFAULT_CHUNK_FRAMES)  # [1, T*512]
"""
from __future__ import annotations

from .base import MelVocoder
from .loader import VocoderNeeds, load_mel_vocoder
from .nsf_hifigan import VOCODER_KINDS, NsfHifiGAN, VocoderConfig, VocoderKind

__all__ = ["MelVocoder", "NsfHifiGAN", "VocoderConfig", "VocoderKind", "VOCODER_KINDS", "VocoderNeeds",
           "load_mel_vocoder"]
