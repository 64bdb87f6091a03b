"""Exportable graphs of an RVC synthesizer (svc_core.rvc.RvcSynthesizer), in plain torch ops.

* `RvcGraph`: RVC's own ONNX interface (infer/modules/onnx/export.py + models_onnx.py at the fixtures' commit),
  so a file we write runs where RVC's exports run and the reverse:

      f0 models:   phone [1, T, C], phone_lengths int64 [1], pitch int64 [1, T], pitchf [1, T] Hz, ds int64 [1],
                   rnd [1, inter, T]  -> audio [1, 1, T * hop]
      no-f0 (nono): phone, phone_lengths, ds, rnd -> audio

  z_p = (m_p + exp(logs_p) * rnd) * x_mask: the caller scales rnd (RVC's torch path uses randn * 0.66666; RVC's
  OnnxRVC feeds plain randn). The NSF source's Gaussian noise is drawn INSIDE the graph (a RandomNormalLike
  node, as in RVC's graph); rvc_layout.py turns it into an input so a run can be reproduced.
* `RvcPriorGraph` / `RvcDecoderGraph`: the split pair for chunked decoding (no random nodes: every draw is an
  input). prior: phone, phone_lengths[, pitch], speaker float32 [1, n_spk] (mix weights; one-hot for an id),
  rnd -> z [1, inter, T], g [1, gin, 1]. decoder: z [1, inter, Tc], g[, f0 [1, Tc], phase0 [1], noise [1, Tc*hop, 1]]
  -> audio [1, 1, Tc * hop]; phase0 = the source's accumulated phase at the chunk's first frame (graph.phase_at).

NSF source of this RVC commit (parity README section 7): harmonic_num 0, so the initial-phase draw rand [1, 1, 1]
is zeroed and never reaches the sound; phase accumulated at frame rate as in svc_core/onnx/graph.py.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..models.commons import LRELU_SLOPE

SINE_AMP = 0.1  # RVC's SineGen defaults: sine amplitude, voiced noise std, voiced threshold (Hz)
NOISE_STD = 0.003
VOICED_THRESHOLD = 0.0


def nsf_source(f0: torch.Tensor, hop: int, sampling_rate: float, l_linear: nn.Module,
               noise: Optional[torch.Tensor] = None, phase0: Optional[torch.Tensor] = None) -> torch.Tensor:
    """f0 [1, T] Hz -> harmonic source [1, 1, T * hop]. noise [1, T * hop, 1] N(0, 1), or None: drawn in the graph
    (randn_like -> RandomNormalLike). phase0 [1] cycles: the accumulated phase at the first frame (chunks)."""
    f0 = f0.unsqueeze(-1)  # [1, T, 1]
    steps = torch.arange(1, hop + 1, dtype=f0.dtype, device=f0.device)
    rad = f0 / sampling_rate * steps  # [1, T, hop] cycles within each frame
    advance = torch.fmod(rad[:, :-1, -1:] + 0.5, 1.0) - 0.5
    rad = rad + F.pad(torch.fmod(torch.cumsum(advance, dim=1), 1.0), (0, 0, 1, 0))
    if phase0 is not None:
        rad = rad + phase0.reshape(1, 1, 1)
    rad = rad.reshape(f0.shape[0], -1, 1)  # [1, N, 1]
    sines = torch.sin(2 * math.pi * rad) * SINE_AMP
    uv = (f0 > VOICED_THRESHOLD).to(sines.dtype).expand(-1, -1, hop).reshape(f0.shape[0], -1, 1)
    if noise is None:
        noise = torch.randn_like(sines)
    source = sines * uv + (uv * NOISE_STD + (1 - uv) * (SINE_AMP / 3)) * noise
    return torch.tanh(l_linear(source)).transpose(1, 2)


class _Parts(nn.Module):
    """The synthesizer's modules the graphs use (RVC's state-dict names: enc_p, flow, dec, emb_g)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        hp = net.hp
        self.has_f0 = bool(hp.f0)
        self.hop = int(hp.hop_length)
        self.sampling_rate = float(hp.sr)
        self.hidden = int(hp.hidden_channels)
        self.inter = int(hp.inter_channels)

    def prior(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: Optional[torch.Tensor],
              g: torch.Tensor, rnd: torch.Tensor) -> torch.Tensor:
        """Text encoder, prior sample and reverse flow -> z * x_mask [1, inter, T]."""
        enc = self.net.enc_p
        x = enc.emb_phone(phone)
        if pitch is not None:
            x = x + enc.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden), 0.1).transpose(1, 2)  # [1, H, T]
        steps = torch.arange(x.shape[2], device=x.device, dtype=phone_lengths.dtype)
        x_mask = (steps.unsqueeze(0) < phone_lengths.unsqueeze(1)).unsqueeze(1).to(x.dtype)
        x = enc.encoder(x * x_mask, x_mask)
        m_p, logs_p = torch.split(enc.proj(x) * x_mask, self.inter, dim=1)
        z_p = (m_p + torch.exp(logs_p) * rnd) * x_mask
        return self.net.flow(z_p, x_mask, g=g, reverse=True) * x_mask

    def decode(self, z: torch.Tensor, g: torch.Tensor, f0: Optional[torch.Tensor] = None,
               noise: Optional[torch.Tensor] = None, phase0: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z [1, inter, T], g [1, gin, 1] (, f0 [1, T] Hz) -> audio [1, 1, T * hop] (RVC's Generator / GeneratorNSF)."""
        dec = self.net.dec
        har = nsf_source(f0, self.hop, self.sampling_rate, dec.m_source.l_linear, noise, phase0) \
            if self.has_f0 else None
        x = dec.conv_pre(z)
        if getattr(dec, "cond", None) is not None:
            x = x + dec.cond(g)
        kernels = len(dec.resblocks) // len(dec.ups)
        for i, up in enumerate(dec.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if har is not None:
                x = x + dec.noise_convs[i](har)
            xs = dec.resblocks[i * kernels](x)
            for j in range(1, kernels):
                xs = xs + dec.resblocks[i * kernels + j](x)
            x = xs / kernels
        return torch.tanh(dec.conv_post(F.leaky_relu(x)))


class RvcGraph(_Parts):
    """RVC's exporter interface (module docstring); forward(phone, phone_lengths, [pitch, pitchf,] ds, rnd)."""

    def forward(self, phone: torch.Tensor, phone_lengths: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        pitch, pitchf, ds, rnd = rest if self.has_f0 else (None, None, *rest)
        g = self.net.emb_g(ds.unsqueeze(0)).transpose(1, 2)  # [1, gin, 1]
        z = self.prior(phone, phone_lengths, pitch, g, rnd)
        return self.decode(z, g, pitchf)


class RvcPriorGraph(_Parts):
    """Split export, part 1: forward(phone, phone_lengths, [pitch,] speaker [1, n_spk], rnd) -> (z, g)."""

    def forward(self, phone: torch.Tensor, phone_lengths: torch.Tensor, *rest: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        pitch, speaker, rnd = rest if self.has_f0 else (None, *rest)
        g = torch.matmul(speaker, self.net.emb_g.weight).unsqueeze(-1)  # [1, gin, 1]
        return self.prior(phone, phone_lengths, pitch, g, rnd), g


class RvcDecoderGraph(_Parts):
    """Split export, part 2 (one chunk): forward(z, g, [f0, phase0, noise]) -> audio [1, 1, Tc * hop]."""

    def forward(self, z: torch.Tensor, g: torch.Tensor, *source: torch.Tensor) -> torch.Tensor:
        f0, phase0, noise = source if self.has_f0 else (None, None, None)
        return self.decode(z, g, f0, noise, phase0)


def graph_input_names(has_f0: bool, part: str = "full") -> list[str]:
    """Input names of the graphs, in their forward order (part: "full" | "prior" | "decoder")."""
    if part == "prior":
        return ["phone", "phone_lengths"] + (["pitch"] if has_f0 else []) + ["speaker", "rnd"]
    if part == "decoder":
        return ["z", "g"] + (["f0", "phase0", "noise"] if has_f0 else [])
    return ["phone", "phone_lengths"] + (["pitch", "pitchf"] if has_f0 else []) + ["ds", "rnd"]


__all__ = ["RvcGraph", "RvcPriorGraph", "RvcDecoderGraph", "graph_input_names", "nsf_source"]
