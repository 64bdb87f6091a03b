"""The exportable synthesizer graph: upstream's ONNX wrapper forward, with a deterministic NSF source.

`SynthesizerGraph(model, speaker_mix)` wraps a loaded (weight-norm folded) `SynthesizerTrn` and computes, in
plain torch ops that export to ONNX,

    forward(c [1, T_units, S], f0 [1, T], mel2ph [1, T] int64, uv [1, T], noise [1, Z, T], sid, vol [1, T])
        -> audio [1, 1, T * hop]

with `sid` int64 [1] (single speaker) or float32 [T, n_spk] per-frame mix weights (speaker-mix variant), as
upstream's onnx_export.py / onnxexport/model_onnx_speaker_mix.py do (spec h):

* content: one zero frame is prepended to `c` and frames are gathered by `mel2ph` (index k -> unit k-1,
  index 0 -> the zero frame), giving [1, S, T];
* prior: z_p = m_p + noise * exp(logs_p) (the caller passes noise = N(0, 1) * noise_scale);
* flow in reverse, then the NSF-HiFiGAN decoder, whose harmonic source is computed here (`FrameSineSource`).

The NSF source, deterministically (documented choice; the torch eager `SineGen` draws random numbers):

* phase is accumulated at frame rate (upstream's ONNX mode): within frame k, sample j (1..hop) has phase
  f0_k * j / sr + acc_k cycles, acc_k = sum_{i<k} wrap(f0_i * hop / sr) mod 1 -- the same phase as the
  per-sample cumulative sum of the eager path, up to float rounding;
* the initial phases of harmonics 2..9 are fixed: drawn once from torch.Generator seeded with DEFAULT_SEED
  (uniform [0, 1) cycles, fundamental at 0), stored in the graph;
* the additive Gaussian noise (std 0.003 voiced, 0.1/3 unvoiced) is a fixed table of NOISE_TABLE_LEN x 9
  N(0, 1) values (same generator) repeated along time.

So torch eager running this module and ONNX Runtime running its export give the same audio for the same
inputs (the 1e-3 parity target); both differ from `SynthesizerTrn.infer` only by the source's random draws.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..constants import DEFAULT_SEED
from ..models.commons import LRELU_SLOPE, f0_to_coarse

NOISE_TABLE_LEN = 8192  # samples of fixed source noise, repeated (186 ms at 44.1 kHz)


class FrameSineSource(nn.Module):
    """f0 [B, T] Hz at frame rate -> harmonic source [B, 1, T * hop] (tanh(Linear(9 sines + noise)))."""

    def __init__(self, m_source: nn.Module, hop: int, seed: int = DEFAULT_SEED) -> None:
        super().__init__()
        gen = m_source.l_sin_gen
        self.sampling_rate = float(gen.sampling_rate)
        self.dim = int(gen.dim)
        self.sine_amp = float(gen.sine_amp)
        self.noise_std = float(gen.noise_std)
        self.voiced_threshold = float(gen.voiced_threshold)
        self.hop = int(hop)
        self.l_linear = m_source.l_linear
        rng = torch.Generator().manual_seed(seed)
        initial = torch.rand(self.dim, generator=rng)
        initial[0] = 0.0
        self.register_buffer("initial_phase", initial.reshape(1, 1, self.dim), persistent=False)
        self.register_buffer("noise_table", torch.randn(NOISE_TABLE_LEN, self.dim, generator=rng),
                             persistent=False)
        self.register_buffer("offsets", torch.arange(1, self.hop + 1, dtype=torch.float32), persistent=False)
        self.register_buffer("harmonics", torch.arange(1, self.dim + 1, dtype=torch.float32).reshape(1, 1, -1),
                             persistent=False)

    def forward(self, f0: torch.Tensor, phase0: torch.Tensor | None = None,
                offset: torch.Tensor | None = None) -> torch.Tensor:
        """f0 [B, T] Hz -> [B, 1, T * hop]. For a chunk of a longer input (chunked decoding): phase0 [1] is the
        accumulated phase (cycles) at the chunk's first frame (`phase_at`) and offset [1] int64 its first
        sample's index, so the chunk's source equals the matching part of the whole input's source."""
        batch = f0.shape[0]
        f0 = f0.unsqueeze(-1)  # [B, T, 1]
        rad = f0 / self.sampling_rate * self.offsets  # [B, T, hop] cycles of the fundamental within a frame
        step = torch.fmod(rad[:, :-1, -1:] + 0.5, 1.0) - 0.5  # wrapped advance per frame, [B, T-1, 1]
        acc = torch.fmod(torch.cumsum(step, dim=1), 1.0)
        rad = rad + F.pad(acc, (0, 0, 1, 0))
        if phase0 is not None:
            rad = rad + phase0.reshape(1, 1, 1)
        rad = rad.reshape(batch, -1, 1) * self.harmonics + self.initial_phase  # [B, N, dim]
        sines = torch.sin(2 * torch.pi * rad) * self.sine_amp
        uv = (f0 > self.voiced_threshold).to(sines.dtype)  # [B, T, 1]
        uv = uv.expand(-1, -1, self.hop).reshape(batch, -1, 1)  # nearest upsampling to [B, N, 1]
        n = sines.shape[1]
        position = torch.arange(n, device=f0.device)
        if offset is not None:
            position = position + offset.reshape(1)
        noise = self.noise_table[torch.remainder(position, NOISE_TABLE_LEN)].unsqueeze(0)  # [1, N, dim]
        noise_amp = uv * self.noise_std + (1 - uv) * (self.sine_amp / 3)
        source = sines * uv + noise_amp * noise
        return torch.tanh(self.l_linear(source)).transpose(1, 2)


def phase_at(f0: np.ndarray, starts: list[int], hop: int, sampling_rate: float) -> np.ndarray:
    """Accumulated phase (cycles, float32) that `FrameSineSource` has at each frame index in `starts` for the
    whole input f0 [T] Hz: the `phase0` inputs of chunked decoding."""
    f0 = np.asarray(f0, dtype=np.float32).reshape(-1)
    advance = f0[:-1] / np.float32(sampling_rate) * np.float32(hop)
    step = np.fmod(advance + np.float32(0.5), np.float32(1.0)) - np.float32(0.5)
    acc = np.concatenate([np.zeros(1, np.float32), np.fmod(np.cumsum(step, dtype=np.float32), np.float32(1.0))])
    return acc[np.asarray(starts, dtype=np.int64)].astype(np.float32)


class SynthesizerGraph(nn.Module):
    """Upstream's ONNX forward over a loaded SynthesizerTrn (see module docstring). Shapes in `forward`."""

    def __init__(self, model: nn.Module, speaker_mix: bool, seed: int = DEFAULT_SEED) -> None:
        super().__init__()
        self.model = model
        self.speaker_mix = bool(speaker_mix)
        self.vol_embedding = getattr(model, "emb_vol", None) is not None
        self.hop = int(model.dec.upp)
        self.source = FrameSineSource(model.dec.m_source, self.hop, seed)

    def speaker(self, sid: torch.Tensor) -> torch.Tensor:
        """sid int64 [1] -> [1, G, 1]; mix float32 [T, n_spk] -> [1, G, T]."""
        if self.speaker_mix:
            return torch.matmul(sid, self.model.emb_g.weight).transpose(0, 1).unsqueeze(0)
        return self.model.emb_g(sid.reshape(1, 1)).transpose(1, 2)

    def forward(self, c: torch.Tensor, f0: torch.Tensor, mel2ph: torch.Tensor, uv: torch.Tensor,
                noise: torch.Tensor, sid: torch.Tensor, vol: torch.Tensor | None = None) -> torch.Tensor:
        """c [1, T_units, S], f0/uv [1, T], mel2ph [1, T] int64, noise [1, Z, T], sid, vol [1, T] -> [1, 1, T*hop]."""
        z, g = self.prior(c, f0, mel2ph, uv, noise, sid, vol)
        return self.decode(z, f0, g)

    def prior(self, c: torch.Tensor, f0: torch.Tensor, mel2ph: torch.Tensor, uv: torch.Tensor,
              noise: torch.Tensor, sid: torch.Tensor, vol: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The part before the vocoder: same inputs as forward -> (z [1, Z, T], g [1, G, 1|T])."""
        m = self.model
        c = F.pad(c, (0, 0, 1, 0))  # zero frame at index 0
        index = mel2ph.unsqueeze(2).expand(-1, -1, c.shape[-1])
        c = torch.gather(c, 1, index).transpose(1, 2)  # [1, S, T]
        g = self.speaker(sid)
        x = m.pre(c) + m.emb_uv(uv.long()).transpose(1, 2)
        if self.vol_embedding and vol is not None:
            x = x + m.emb_vol(vol.unsqueeze(-1)).transpose(1, 2)
        mask = torch.ones_like(f0).unsqueeze(1)
        enc = m.enc_p
        h = x + enc.f0_emb(f0_to_coarse(f0)).transpose(1, 2)
        h = enc.enc_(h, mask)
        m_p, logs_p = torch.split(enc.proj(h), enc.out_channels, dim=1)
        z_p = m_p + noise * torch.exp(logs_p)
        return m.flow(z_p, mask, g=g, reverse=True), g

    def decode(self, z: torch.Tensor, f0: torch.Tensor, g: torch.Tensor, phase0: torch.Tensor | None = None,
               offset: torch.Tensor | None = None) -> torch.Tensor:
        """NSF-HiFiGAN with the deterministic frame-rate source: z [1, Z, T], f0 [1, T] -> [1, 1, T*hop]
        (phase0 / offset: see FrameSineSource.forward)."""
        dec = self.model.dec
        har = self.source(f0, phase0, offset)
        x = dec.conv_pre(z) + dec.cond(g)
        for i in range(dec.num_upsamples):
            x = dec.ups[i](F.leaky_relu(x, LRELU_SLOPE)) + dec.noise_convs[i](har)
            xs = dec.resblocks[i * dec.num_kernels](x)
            for j in range(1, dec.num_kernels):
                xs = xs + dec.resblocks[i * dec.num_kernels + j](x)
            x = xs / dec.num_kernels
        return torch.tanh(dec.conv_post(F.leaky_relu(x)))


class PriorGraph(nn.Module):
    """Export wrapper: SynthesizerGraph.prior as a module (outputs z, g)."""

    def __init__(self, graph: SynthesizerGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.graph.prior(*inputs)


class DecoderGraph(nn.Module):
    """Export wrapper: SynthesizerGraph.decode for one chunk (z, f0, g, phase0, offset -> audio)."""

    def __init__(self, graph: SynthesizerGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, z: torch.Tensor, f0: torch.Tensor, g: torch.Tensor, phase0: torch.Tensor,
                offset: torch.Tensor) -> torch.Tensor:
        return self.graph.decode(z, f0, g, phase0, offset)
