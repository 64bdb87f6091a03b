"""A loaded RVC voice: `load_rvc_voice(path) -> RvcVoice` (float32, eval mode, weight norm folded).

`RvcVoice.synthesize` is the RVC recipe's call (content at 100 frames/s, coarse pitch, f0 Hz, speaker, noise);
`RvcVoice.infer` is the so-vits seam the shared engine calls (content [1, C, T], f0/uv, g, seed).
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import SvcConfig
from ..errors import ModelError
from ..noise import NoiseSource, TorchNoise
from .checkpoint import RvcCheckpoint, read_rvc_checkpoint
from .hparams import RvcHParams
from .synthesizer import RvcSynthesizer
from ..models.voice_model import VoiceModel

F0_MIN, F0_MAX = 50.0, 1100.0  # Hz, RVC's coarse-pitch range
PITCH_BINS = 256  # coarse indices 1..255
_MEL_MIN = 1127 * math.log(1 + F0_MIN / 700)
_MEL_MAX = 1127 * math.log(1 + F0_MAX / 700)


def coarse_pitch_torch(hz: torch.Tensor) -> torch.Tensor:
    """Hz [...] -> RVC's coarse pitch (long, 1..255; 0 Hz -> 1), computed in float64 like RVC's numpy code.
    (The recipe uses svc_core.rvc.f0.coarse_pitch; this is the same mapping for the so-vits seam.)"""
    mel = 1127 * torch.log(1 + hz.double() / 700)
    mel = torch.where(mel > 0, (mel - _MEL_MIN) * (PITCH_BINS - 2) / (_MEL_MAX - _MEL_MIN) + 1, mel)
    mel = mel.clamp(1, PITCH_BINS - 1)
    return torch.round(mel).long()


class RvcVoice(VoiceModel, nn.Module):
    """An RVC voice behind svc_core's model seams. `.net` is the RvcSynthesizer; `.dec` its decoder."""

    family = "rvc"

    def __init__(self, net: RvcSynthesizer, config: SvcConfig, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.meta = dict(meta or {})

    @property
    def hparams(self) -> RvcHParams:
        return self.net.hp

    @property
    def dec(self) -> nn.Module:
        """The decoder (the engine times and chunks it as "vocoder")."""
        return self.net.dec

    @property
    def has_f0(self) -> bool:
        return self.net.hp.f0

    @property
    def n_speakers(self) -> int:
        return self.net.hp.spk_embed_dim

    @property
    def sample_rate(self) -> int:
        return self.net.hp.sr

    @property
    def hop_length(self) -> int:
        return self.net.hp.hop_length

    def _speaker(self, speaker: torch.Tensor | int) -> torch.Tensor:
        """LongTensor id(s) / int, or mix weights [n_spk] or [T, n_spk] (rows averaged: RVC's g is global)."""
        if isinstance(speaker, torch.Tensor) and speaker.is_floating_point() and speaker.dim() == 2:
            speaker = speaker.mean(dim=0)
        if isinstance(speaker, torch.Tensor) and not speaker.is_floating_point():
            speaker = speaker.reshape(-1)[:1]
        return self.net.speaker_embedding(speaker)

    @torch.no_grad()
    def synthesize(self, phone: torch.Tensor, pitch: torch.Tensor | None, nsff0: torch.Tensor | None,
                   speaker: torch.Tensor | int, noise: NoiseSource, chunk_frames: int = 0,
                   span: tuple[int, int] | None = None, vocoder_dtype: torch.dtype | None = None) -> np.ndarray:
        """phone [1, T, C] (C = hparams.content_dim, 100 frames/s), pitch [1, T] long, nsff0 [1, T] Hz (None for
        no-pitch voices), speaker id / mix weights -> float32 audio [T*hop] at hparams.sr (or the span's)."""
        device = self.net.emb_g.weight.device
        if phone.dim() != 3 or phone.shape[-1] != self.hparams.content_dim:
            raise ModelError(f"This RVC {self.hparams.version} voice takes content features [1, frames, "
                             f"{self.hparams.content_dim}]; got {list(phone.shape)}. Check the content encoder "
                             f"({self.hparams.speech_encoder}).")
        frames = phone.shape[1]
        lengths = torch.tensor([frames], dtype=torch.long, device=device)
        if self.has_f0:
            if pitch is None or nsff0 is None:
                raise ModelError("This RVC voice is a pitch model: it needs pitch and f0.")
            pitch, nsff0 = pitch[:, :frames].to(device), nsff0[:, :frames].float().to(device)
        out = self.net.infer(phone.float().to(device), lengths, pitch, nsff0, self._speaker(speaker), noise,
                             chunk_frames=chunk_frames, span=span, vocoder_dtype=vocoder_dtype)
        return out.o[0, 0].float().cpu().numpy()

    @torch.no_grad()
    def infer(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor, noise_scale: float = 0.35,
              predict_f0: bool = False, vol: torch.Tensor | None = None, seed: int = 52468, chunk_frames: int = 0,
              span: tuple[int, int] | None = None, vocoder_dtype: torch.dtype | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """so-vits seam: c [1, C, T], f0 [1, T] Hz, uv [1, T] 0/1, g id [1, 1] or mix -> (audio [1, 1, T*hop], f0).
        Unvoiced frames get 0 Hz (coarse 1) as in RVC; noise_scale / predict_f0 / vol do not apply (RVC's prior
        scale is fixed); the random draws come from a generator seeded with `seed`."""
        if predict_f0:
            raise ModelError("RVC voices cannot predict f0 (auto_predict_f0); give the pitch instead.")
        hz = (f0 * uv).float()
        pitch = coarse_pitch_torch(hz) if self.has_f0 else None
        audio = self.synthesize(c.transpose(1, 2), pitch, hz if self.has_f0 else None, g, TorchNoise.seeded(seed),
                                chunk_frames=chunk_frames, span=span, vocoder_dtype=vocoder_dtype)
        return torch.from_numpy(audio)[None, None], f0


def voice_from_checkpoint(ckpt: RvcCheckpoint, device: str | torch.device = "cpu") -> RvcVoice:
    """An RvcVoice (float32, eval, folded weight norm, no gradients) from a read checkpoint."""
    net = ckpt.build(posterior=False)
    net.fold_weight_norm()
    net = net.float().eval().to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    source = ckpt.meta.get("file", "<rvc>")
    meta = dict(ckpt.meta)
    voice = RvcVoice(net, ckpt.hparams.svc_config(ckpt.speakers, source=source), meta)
    return voice.eval()


def load_rvc_voice(path: str | os.PathLike, device: str | torch.device = "cpu",
                   config_path: str | os.PathLike | None = None) -> RvcVoice:
    """Load an RVC / Applio voice .pth or an RVC training G_*.pth (config_path: its logs/<exp>/config.json)."""
    return voice_from_checkpoint(read_rvc_checkpoint(path, config_path), device)
