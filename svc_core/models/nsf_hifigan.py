"""NSF-HiFiGAN generator (`dec`): latent z [B, Z, T] + f0 [B, T] Hz + speaker g -> waveform [B, 1, T*hop].

The harmonic-plus-noise source is built at the output rate from f0 repeated `hop` times (nearest),
then injected after every upsampling stage through `noise_convs`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..constants import MODEL_SAMPLE_RATE
from ..precision import autocast
from .commons import LRELU_SLOPE, get_padding
from .weight_norm import weight_norm

HARMONIC_NUM = 8  # overtones above the fundamental (9 sines in total)
SINE_AMP = 0.1  # amplitude of each sine
NOISE_STD = 0.003  # additive noise std in voiced samples (unvoiced: SINE_AMP / 3)
VOICED_THRESHOLD = 0.0  # Hz; a sample is voiced when f0 > this


SHAPE_BUCKET = 32  # frames; torch decodes chunks whose length is a multiple of this (see chunk_spans)


def chunk_spans(frames: int, chunk_frames: int, context: int, start: int = 0, stop: int | None = None,
                bucket: int = 1) -> list[tuple[int, int, int, int]]:
    """Chunked decoding plan for the frames [start, stop) of an input of `frames` frames (default: all of it):
    (keep_start, keep_stop, lo, hi) per chunk, where frames [keep_start, keep_stop) are kept from a decode of
    [lo, hi) = the chunk plus `context` frames each side (clipped to the input). One chunk when chunking is off
    (chunk_frames <= 0) or would not split the range; decoding the whole input is the span (0, frames, 0, frames).

    bucket > 1 widens each [lo, hi) with more real context (left first) to a multiple of `bucket` frames where the
    input allows: the same samples, but few distinct lengths. torch's oneDNN convolutions compile a kernel per
    input length (~0.5 s for the full-size vocoder on 2 threads, as much as decoding ~110 frames), so without it
    every piece's last chunk pays that again."""
    stop = frames if stop is None else stop
    if not 0 <= start < stop <= frames:
        raise ValueError(f"frame range [{start}, {stop}) is not inside 0..{frames}")
    size = stop - start
    if 0 < chunk_frames and size > chunk_frames + 2 * context:
        size = chunk_frames
    spans = []
    for first in range(start, stop, size):
        last = min(stop, first + size)
        lo, hi = max(0, first - context), min(frames, last + context)
        if bucket > 1 and (lo, hi) != (0, frames):
            width = min(frames, -(-(hi - lo) // bucket) * bucket)
            lo = max(0, hi - width)
            hi = lo + width
        spans.append((first, last, lo, hi))
    return spans



def receptive_frames(gen: nn.Module, noise_convs: nn.ModuleList | None = None) -> int:
    """Input frames each side that one output frame of a HiFi-GAN-style decoder `gen` (conv_pre, ups,
    resblocks in groups of num_kernels, conv_post; `upp` samples per frame) depends on, rounded up, plus one:
    decoding a chunk with this much context on each side gives the same samples as decoding the whole input.
    noise_convs: the NSF source's per-stage convolutions (None: a decoder without a source)."""
    frames = (gen.conv_pre.kernel_size[0] - 1) / 2
    rate = 1
    for i, up in enumerate(gen.ups):
        frames += math.ceil(up.kernel_size[0] / up.stride[0]) / rate
        rate *= up.stride[0]
        widest = 0.0
        for block in gen.resblocks[i * gen.num_kernels:(i + 1) * gen.num_kernels]:
            widest = max(widest, sum(c.dilation[0] * (c.kernel_size[0] - 1) / 2 for c in block.modules()
                                     if isinstance(c, nn.Conv1d)))
        frames += widest / rate
        if noise_convs is not None:
            frames += noise_convs[i].kernel_size[0] / 2 / gen.upp
    frames += (gen.conv_post.kernel_size[0] - 1) / 2 / rate
    return int(math.ceil(frames)) + 1

class SineGen(nn.Module):
    """f0 [B, N, 1] Hz at the output rate -> (sines [B, N, dim], uv [B, N, 1], noise [B, N, dim]).

    RNG: one rand(B, dim) for the initial harmonic phases (fundamental at phase 0), then one randn_like(sines).
    """

    def __init__(self, sampling_rate: int, harmonic_num: int = 0, sine_amp: float = SINE_AMP,
                 noise_std: float = NOISE_STD, voiced_threshold: float = VOICED_THRESHOLD) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate
        self.harmonic_num = harmonic_num
        self.dim = harmonic_num + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold

    def _sines(self, freqs: torch.Tensor) -> torch.Tensor:
        """freqs [B, N, dim] Hz -> sin(2*pi*cumulative phase), with the phase kept near [0, 1) cycles."""
        rad = (freqs / self.sampling_rate) % 1
        initial = torch.rand(freqs.shape[0], freqs.shape[2], device=freqs.device)
        initial[:, 0] = 0
        rad[:, 0, :] = rad[:, 0, :] + initial
        # Subtract one cycle wherever the wrapped running phase decreases, so cumsum stays small.
        wrapped = torch.cumsum(rad, 1) % 1
        wraps = (wrapped[:, 1:, :] - wrapped[:, :-1, :]) < 0
        shift = torch.zeros_like(rad)
        shift[:, 1:, :] = wraps * -1.0
        return torch.sin(torch.cumsum(rad + shift, dim=1) * 2 * np.pi)

    @torch.no_grad()
    def forward(self, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        harmonics = torch.FloatTensor([[list(range(1, self.harmonic_num + 2))]]).to(f0.device)
        sine_waves = self._sines(torch.multiply(f0, harmonics)) * self.sine_amp
        uv = torch.ones_like(f0) * (f0 > self.voiced_threshold)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        noise = noise_amp * torch.randn_like(sine_waves)
        return sine_waves * uv + noise, uv, noise


class SourceModuleHnNSF(nn.Module):
    """f0 [B, N, 1] -> harmonic source tanh(Linear(9 sines)) [B, N, 1], noise source [B, N, 1], uv [B, N, 1]."""

    def __init__(self, sampling_rate: int, harmonic_num: int = 0, sine_amp: float = SINE_AMP,
                 add_noise_std: float = NOISE_STD, voiced_threshold: float = VOICED_THRESHOLD) -> None:
        super().__init__()
        self.sine_amp = sine_amp
        self.l_sin_gen = SineGen(sampling_rate, harmonic_num, sine_amp, add_noise_std, voiced_threshold)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)
        self.l_tanh = nn.Tanh()

    def forward(self, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sine_waves, uv, _ = self.l_sin_gen(f0)
        harmonic = self.l_tanh(self.l_linear(sine_waves))
        noise = torch.randn_like(uv) * self.sine_amp / 3  # drawn (and unused) as upstream does
        return harmonic, noise, uv


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with leaky-ReLU, each a residual add. [B, C, N] -> [B, C, N]."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation[:3]])
        self.convs2 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size)))
            for _ in dilation[:3]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            xt = conv1(F.leaky_relu(x, LRELU_SLOPE))
            xt = conv2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """Two dilated convs (the first two dilations) with leaky-ReLU, each a residual add. [B, C, N] -> [B, C, N]."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation[:2]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


def _init_conv(module: nn.Module, std: float = 0.01) -> None:
    """HiFiGAN init: N(0, std) conv weights (on v for weight-normed layers)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            target = m.parametrizations.weight.original1 if hasattr(m, "parametrizations") else m.weight
            with torch.no_grad():
                target.normal_(0.0, std)


class Generator(nn.Module):
    """NSF-HiFiGAN: forward(x [B, Z, T], f0 [B, T] Hz, g [B, G, 1|T]) -> audio [B, 1, T*prod(upsample_rates)]."""

    def __init__(self, inter_channels: int, resblock: str, resblock_kernel_sizes: list[int],
                 resblock_dilation_sizes: list[list[int]], upsample_rates: list[int], upsample_initial_channel: int,
                 upsample_kernel_sizes: list[int], gin_channels: int, sampling_rate: int = MODEL_SAMPLE_RATE) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upp = int(math.prod(upsample_rates))
        self.m_source = SourceModuleHnNSF(sampling_rate=sampling_rate, harmonic_num=HARMONIC_NUM)
        self.noise_convs = nn.ModuleList()
        self.conv_pre = weight_norm(nn.Conv1d(inter_channels, upsample_initial_channel, 7, 1, padding=3))
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in, c_out = upsample_initial_channel // (2 ** i), upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u + 1) // 2)))
            if i + 1 < len(upsample_rates):
                stride = int(math.prod(upsample_rates[i + 1:]))
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=stride * 2, stride=stride,
                                                  padding=(stride + 1) // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i in range(len(self.ups)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, tuple(d)))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))
        _init_conv(self.ups)
        _init_conv(self.conv_post)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def context_frames(self) -> int:
        """Frames of input on each side that one output frame depends on (see `receptive_frames`)."""
        return receptive_frames(self, self.noise_convs)

    def forward(self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None,
                chunk_frames: int = 0, span: tuple[int, int] | None = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
        """chunk_frames > 0 decodes `chunk_frames` frames at a time (plus `context_frames()` on each side, then
        cut away): the same audio up to float rounding, with working memory bounded by the chunk instead of the
        input length. span (start, stop) decodes only those frames (plus context): audio [B, 1, (stop-start)*upp],
        the same samples as that stretch of the whole decode. The source is made once for the whole input, so its
        random draws do not change. dtype (bfloat16 / float16): the decoding runs under autocast in that precision
        (svc_core.precision); the source stays float32 and the audio is returned as float32."""
        f0 = F.interpolate(f0[:, None], scale_factor=float(self.upp), mode="nearest").transpose(1, 2)  # [B, N, 1]
        har_source = self.m_source(f0)[0].transpose(1, 2)  # [B, 1, N]
        start, stop = span if span is not None else (0, x.shape[-1])
        spans = chunk_spans(x.shape[-1], chunk_frames, self.context_frames(), start, stop, bucket=SHAPE_BUCKET)
        with autocast(x.device, dtype):
            if spans == [(0, x.shape[-1], 0, x.shape[-1])]:
                return self.decode(x, har_source, g).float()
            pieces = []
            for first, last, lo, hi in spans:
                g_part = g if g is None or g.shape[-1] == 1 else g[..., lo:hi]
                y = self.decode(x[..., lo:hi], har_source[..., lo * self.upp:hi * self.upp], g_part)
                pieces.append(y[..., (first - lo) * self.upp:(last - lo) * self.upp].float())
        return torch.cat(pieces, dim=-1)

    def decode(self, x: torch.Tensor, har_source: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, Z, T], harmonic source [B, 1, T*upp], g [B, G, 1|T] -> audio [B, 1, T*upp]."""
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        return upsample_stack(self, x, har_source)


def upsample_stack(gen: nn.Module, x: torch.Tensor, har_source: torch.Tensor) -> torch.Tensor:
    """The NSF-HiFiGAN body after conv_pre (shared by the so-vits decoder and the openvpi mel vocoder): per stage
    leaky ReLU, upsampling, + the excitation's noise_conv, mean of the resblocks; then leaky ReLU (torch's default
    slope 0.01, as upstream), conv_post, tanh. x [B, C, T], har_source [B, 1, T*upp] -> audio [B, 1, T*upp]."""
    for i in range(gen.num_upsamples):
        x = F.leaky_relu(x, LRELU_SLOPE)
        x = gen.ups[i](x)
        x = x + gen.noise_convs[i](har_source)
        xs = gen.resblocks[i * gen.num_kernels](x)
        for j in range(1, gen.num_kernels):
            xs = xs + gen.resblocks[i * gen.num_kernels + j](x)
        x = xs / gen.num_kernels
    return torch.tanh(gen.conv_post(F.leaky_relu(x)))
