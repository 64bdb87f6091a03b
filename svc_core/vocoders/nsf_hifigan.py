"""The openvpi NSF-HiFiGAN mel vocoder (pretrain/nsf_hifigan, upstream `vdecoder/nsf_hifigan/models.py`).

Differences from the so-vits decoder (svc_core/models/nsf_hifigan.py, whose ResBlocks and chunk planning this
reuses): conv_pre reads the mel (num_mels channels), no speaker `cond`, upsampling padding (k - u) // 2,
noise_convs padding s // 2, and its own excitation (svc_core/vocoders/source.py). Kinds: `nsf-hifigan` takes the
natural-log mel, `nsf-hifigan-log10` scales it by log10(e) first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..noise import NoiseSource, TorchNoise
from ..models.nsf_hifigan import SHAPE_BUCKET, Generator, ResBlock1, ResBlock2, chunk_spans, upsample_stack
from ..models.weight_norm import weight_norm
from ..precision import autocast
from .base import MelVocoder
from .mel import MelSettings
from .source import HarmonicSource

PRE_KERNEL = 7  # conv_pre / conv_post kernel (samples)
LOG10_E = 0.434294  # upstream's constant for the log10 kind (ln -> log10)


@dataclass(frozen=True)
class VocoderConfig:
    """The fields of an openvpi config.json this code uses (defaults: nsf_hifigan_20221211)."""
    sampling_rate: int = 44100
    num_mels: int = 128
    n_fft: int = 2048
    win_size: int = 2048
    hop_size: int = 512
    fmin: float = 40.0
    fmax: float = 16000.0
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    @property
    def mel_settings(self) -> MelSettings:
        return MelSettings(self.sampling_rate, self.num_mels, self.n_fft, self.win_size, self.hop_size,
                           float(self.fmin), float(self.fmax))


@dataclass(frozen=True)
class VocoderKind:
    """One vocoder type of upstream's diffusion yaml (`vocoder.type`)."""
    name: str
    mel_scale: float  # factor applied to the natural-log mel before the generator
    description: str


VOCODER_KINDS: dict[str, VocoderKind] = {k.name: k for k in (
    VocoderKind("nsf-hifigan", 1.0, "openvpi NSF-HiFiGAN on the natural-log mel (so-vits-svc 4.1 default)"),
    VocoderKind("nsf-hifigan-log10", LOG10_E, "the same generator trained on a log10 mel"),
)}


class MelGenerator(nn.Module):
    """mel [B, num_mels, T] + excitation [B, 1, T*upp] -> audio [B, 1, T*upp]. Upstream state-dict names; the
    weights are weight-normed as built (fold with svc_core.models.weight_norm.fold_weight_norm after loading)."""

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        rates, kernels, ch = cfg.upsample_rates, cfg.upsample_kernel_sizes, cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.num_upsamples = len(rates)
        self.upp = int(math.prod(rates))
        self.m_source = HarmonicSource(cfg.sampling_rate, self.upp)
        self.conv_pre = weight_norm(nn.Conv1d(cfg.num_mels, ch, PRE_KERNEL, 1, padding=PRE_KERNEL // 2))
        block = ResBlock1 if str(cfg.resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(rates, kernels)):
            c_out = ch // (2 ** (i + 1))
            self.ups.append(weight_norm(nn.ConvTranspose1d(ch // (2 ** i), c_out, k, u, padding=(k - u) // 2)))
            if i + 1 < len(rates):
                stride = int(math.prod(rates[i + 1:]))
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=stride * 2, stride=stride,
                                                  padding=stride // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(block(c_out, rk, tuple(rd)))
        self.conv_post = weight_norm(nn.Conv1d(ch // (2 ** len(rates)), 1, PRE_KERNEL, 1, padding=PRE_KERNEL // 2))

    # The receptive field arithmetic of the so-vits decoder: same layer kinds, kernels and strides.
    context_frames = Generator.context_frames

    def forward(self, x: torch.Tensor, har_source: torch.Tensor) -> torch.Tensor:
        """x [B, num_mels, T] (already scaled for the kind), har_source [B, 1, T*upp] -> audio [B, 1, T*upp]."""
        return upsample_stack(self, self.conv_pre(x), har_source)


class NsfHifiGAN(MelVocoder):
    """The openvpi NSF-HiFiGAN as a MelVocoder (build with svc_core.vocoders.loader.load_mel_vocoder)."""

    # Frames per decode chunk callers should use (bench/vocoder_chunks.py, full-size layout, 600 frames, 2-core box
    # under load ~8, best of 3 interleaved): 192-384 cost 0.87-0.88x the CPU-seconds of one whole call on 1 thread
    # and 0.90-1.0x its wall time on 2; 64 costs 1.12-1.26x (32 frames of context per chunk). Memory stays bounded.
    DEFAULT_CHUNK_FRAMES = 256

    def __init__(self, config: VocoderConfig, kind: str = "nsf-hifigan") -> None:
        super().__init__(config.mel_settings)
        self.config = config
        self.kind = kind
        self.mel_scale = VOCODER_KINDS[kind].mel_scale
        self.generator = MelGenerator(config)

    @property
    def upp(self) -> int:
        return self.generator.upp

    def context_frames(self) -> int:
        """Frames of context each side of a chunk that make chunked decoding equal to one call."""
        return self.generator.context_frames()

    @torch.no_grad()
    def decode(self, mel: torch.Tensor, f0: torch.Tensor, noise: NoiseSource | None = None,
               chunk_frames: int = 0, span: tuple[int, int] | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """mel [B, T, n_mels] natural-log + f0 [B, T] (or [B, >=T, 1]) Hz -> audio [B, T*hop] (span: its frames).
        dtype bfloat16 / float16 (opt-in, svc_core.precision): the generator under autocast in that precision; the
        excitation stays float32 and the audio is returned as float32.

        Random draws (noise, default the global torch RNG): rand(B, 9), then randn [B, T*hop, 9] in one draw when
        chunk_frames <= 0, else per batch row one [1, chunk_frames*hop, 9] draw per chunk (the same numbers from
        torch's RNG). The excitation is made once for the frames the chunks need (its phase runs from frame 0),
        then each chunk is decoded with context_frames() of context each side and cut."""
        noise = TorchNoise() if noise is None else noise
        frames = mel.shape[1]
        f0 = f0[..., 0] if f0.dim() == 3 else f0
        if f0.shape[1] < frames:
            raise ValueError(f"f0 has {f0.shape[1]} frames, the mel {frames}: need one f0 value per mel frame")
        device = self.device
        f0 = f0[:, :frames].float().to(device)
        x = mel.transpose(1, 2).float().to(device) * self.mel_scale
        start, stop = span if span is not None else (0, frames)
        spans = chunk_spans(frames, chunk_frames, self.context_frames(), start, stop, bucket=SHAPE_BUCKET)
        first, last = min(s[2] for s in spans), max(s[3] for s in spans)
        har = self.generator.m_source(f0, noise, first, last, block_frames=max(0, chunk_frames))
        upp = self.upp
        pieces = []
        for keep_lo, keep_hi, lo, hi in spans:
            with autocast(device, dtype):
                y = self.generator(x[..., lo:hi], har[..., (lo - first) * upp:(hi - first) * upp])
            pieces.append(y[:, 0, (keep_lo - lo) * upp:(keep_hi - lo) * upp].float())
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
