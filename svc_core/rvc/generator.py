"""RVC's decoders (`dec`): GeneratorNSF (pitch models) and Generator (the *_nono models), with chunked decoding.

Both: plain conv_pre(7) + cond(g), per stage leaky ReLU 0.1 -> weight-normed ConvTranspose1d (padding (k-u)//2)
[-> + noise_convs(harmonic source), NSF only] -> mean of the resblocks; leaky ReLU 0.01, bias-free conv_post(7),
tanh. z [B, Z, T] -> audio [B, 1, T*hop]. The resblocks are svc_core's (same math and keys as RVC's).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..models.commons import LRELU_SLOPE
from ..models.nsf_hifigan import SHAPE_BUCKET, ResBlock1, ResBlock2, chunk_spans, receptive_frames, upsample_stack
from ..models.weight_norm import weight_norm
from ..noise import NoiseSource
from ..precision import autocast
from .hparams import RvcHParams
from .source import RvcSourceNSF

PRE_KERNEL = 7  # conv_pre / conv_post kernel size
UPS_INIT_STD = 0.01  # RVC's init_weights on the upsampling convs


class RvcGenerator(nn.Module):
    """No-pitch HiFi-GAN (`SynthesizerTrnMs*NSFsid_nono.dec`): forward(z [B, Z, T], g [B, G, 1]) -> [B, 1, T*hop]."""

    has_source = False

    def __init__(self, hp: RvcHParams) -> None:
        super().__init__()
        self.num_kernels = len(hp.resblock_kernel_sizes)
        self.num_upsamples = len(hp.upsample_rates)
        self.upp = hp.hop_length
        ch0 = hp.upsample_initial_channel
        self.conv_pre = nn.Conv1d(hp.inter_channels, ch0, PRE_KERNEL, 1, padding=PRE_KERNEL // 2)
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(hp.upsample_rates, hp.upsample_kernel_sizes)):
            conv = nn.ConvTranspose1d(ch0 // 2 ** i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            nn.init.normal_(conv.weight, 0.0, UPS_INIT_STD)
            self.ups.append(weight_norm(conv))
        self._build_noise_convs(hp)
        block = ResBlock1 if hp.resblock == "1" else ResBlock2
        self.resblocks = nn.ModuleList()
        ch = ch0
        for i in range(self.num_upsamples):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(hp.resblock_kernel_sizes, hp.resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, tuple(d)))
        self.conv_post = nn.Conv1d(ch, 1, PRE_KERNEL, 1, padding=PRE_KERNEL // 2, bias=False)
        if hp.gin_channels:
            self.cond = nn.Conv1d(hp.gin_channels, ch0, 1)

    def _build_noise_convs(self, hp: RvcHParams) -> None:
        pass

    def context_frames(self) -> int:
        """Input frames each side one output frame depends on (svc_core.models.nsf_hifigan.receptive_frames)."""
        return receptive_frames(self, self.noise_convs if self.has_source else None)

    def excitation(self, f0: torch.Tensor | None, noise: NoiseSource) -> torch.Tensor | None:
        """Harmonic source [B, 1, T*hop] (None for the no-pitch decoder)."""
        return None

    def forward(self, x: torch.Tensor, f0: torch.Tensor | None = None, g: torch.Tensor | None = None,
                noise: NoiseSource | None = None, chunk_frames: int = 0, span: tuple[int, int] | None = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
        """x [B, Z, T], f0 [B, T] Hz (NSF only) -> audio [B, 1, T*hop] (or the span's (stop-start)*hop samples).

        The source (and its random draws) is made once for the whole input; chunk_frames > 0 decodes that many
        frames at a time plus `context_frames()` each side (same samples, memory bounded by the chunk); dtype
        runs the decoder under autocast (the source stays float32, audio comes back float32)."""
        source = self.excitation(f0, noise)
        start, stop = span if span is not None else (0, x.shape[-1])
        spans = chunk_spans(x.shape[-1], chunk_frames, self.context_frames(), start, stop, bucket=SHAPE_BUCKET)
        with autocast(x.device, dtype):
            if spans == [(0, x.shape[-1], 0, x.shape[-1])]:
                return self.decode(x, source, g).float()
            pieces = []
            for first, last, lo, hi in spans:
                part = None if source is None else source[..., lo * self.upp:hi * self.upp]
                y = self.decode(x[..., lo:hi], part, g)
                pieces.append(y[..., (first - lo) * self.upp:(last - lo) * self.upp].float())
        return torch.cat(pieces, dim=-1)

    def decode(self, x: torch.Tensor, source: torch.Tensor | None, g: torch.Tensor | None) -> torch.Tensor:
        """x [B, Z, T], source [B, 1, T*hop] | None, g [B, G, 1] -> audio [B, 1, T*hop]."""
        x = self.conv_pre(x)
        if g is not None and hasattr(self, "cond"):
            x = x + self.cond(g)
        if source is not None:
            return upsample_stack(self, x, source)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


class RvcGeneratorNSF(RvcGenerator):
    """Pitch models' decoder: + `m_source` (RVC's SineGen) and `noise_convs` injecting it after every upsampling."""

    has_source = True

    def __init__(self, hp: RvcHParams) -> None:
        super().__init__(hp)
        self.m_source = RvcSourceNSF(hp.sr)

    def _build_noise_convs(self, hp: RvcHParams) -> None:
        self.noise_convs = nn.ModuleList()
        rates = hp.upsample_rates
        for i in range(len(rates)):
            c_out = hp.upsample_initial_channel // 2 ** (i + 1)
            if i + 1 < len(rates):
                stride = int(math.prod(rates[i + 1:]))
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=stride * 2, stride=stride,
                                                  padding=stride // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))

    def excitation(self, f0: torch.Tensor | None, noise: NoiseSource | None) -> torch.Tensor:
        if f0 is None or noise is None:
            raise ValueError("the NSF decoder needs f0 [B, T] Hz and a NoiseSource")
        return self.m_source(f0, self.upp, noise).transpose(1, 2)
