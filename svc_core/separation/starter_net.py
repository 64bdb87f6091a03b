"""The built-in separator: a small STFT soft-mask network trained here on synthetic songs (train_net.py).

Per STFT frame (2048-point Hann window, hop 441 samples = 10 ms at 44.1 kHz) the log magnitudes of both channels
[2 x 1025] go through a 1x1 projection to `hidden` channels, a stack of residual dilated temporal convolutions
(kernel 3; per-frame LayerNorm, so nothing looks at statistics of the whole input) and a 1x1 projection to one
sigmoid mask per channel and bin. The mask multiplies each channel's complex STFT to give the vocals; the
accompaniment is the mixture minus the vocals, so the stems sum to the mixture. The receptive field is finite
(`receptive_frames`, about 0.8 s), so a chunked song equals the whole-file result away from chunk edges.

Weights: `svc_core/separation/weights/starter.pt`, a dict {"format", "version", "hparams", "state_dict"} of plain
tensors (float16 on disk), read with `safe_load.load_torch` (weights only).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from .base import ACCOMPANIMENT, SEPARATION_SAMPLE_RATE, VOCALS, Separator

WEIGHTS_FORMAT = "svc-starter-separator"
WEIGHTS_VERSION = 1
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "starter.pt"
LOG_FLOOR = 1e-5  # added to magnitudes before the log


@dataclass(frozen=True)
class NetConfig:
    """Shape of the network and its STFT (samples at 44.1 kHz)."""

    n_fft: int = 2048
    hop: int = 441
    hidden: int = 256
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4)
    kernel: int = 3

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def receptive_frames(self) -> int:
        """STFT frames each output frame sees (centred)."""
        return 1 + (self.kernel - 1) * sum(self.dilations)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "NetConfig":
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        if "dilations" in known:
            known["dilations"] = tuple(int(d) for d in known["dilations"])
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dilations"] = list(self.dilations)
        return out


class FrameNorm(nn.Module):
    """LayerNorm over channels of [B, C, T], per frame."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class Block(nn.Module):
    """x + 1x1(GELU(dilated conv(norm(x)))): [B, H, T] -> [B, H, T]."""

    def __init__(self, hidden: int, kernel: int, dilation: int):
        super().__init__()
        self.norm = FrameNorm(hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(hidden, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(torch.nn.functional.gelu(self.conv(self.norm(x))))


class MaskNet(nn.Module):
    """log magnitudes [B, 2, F, T] -> vocal mask in [0, 1], [B, 2, F, T]."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        f = config.bins
        self.in_scale = nn.Parameter(torch.ones(2 * f, 1))
        self.in_shift = nn.Parameter(torch.zeros(2 * f, 1))
        self.inp = nn.Conv1d(2 * f, config.hidden, 1)
        self.blocks = nn.ModuleList(Block(config.hidden, config.kernel, d) for d in config.dilations)
        self.out_norm = FrameNorm(config.hidden)
        self.out = nn.Conv1d(config.hidden, 2 * f, 1)

    def forward(self, logmag: torch.Tensor) -> torch.Tensor:
        b, c, f, t = logmag.shape
        x = logmag.reshape(b, c * f, t) * self.in_scale + self.in_shift
        x = torch.nn.functional.gelu(self.inp(x))
        for block in self.blocks:
            x = block(x)
        return torch.sigmoid(self.out(self.out_norm(x))).reshape(b, c, f, t)


def stft(audio: torch.Tensor, config: NetConfig) -> torch.Tensor:
    """[B, 2, N] float32 -> complex [B, 2, F, T] (centred frames, T = N // hop + 1)."""
    b, c, n = audio.shape
    window = torch.hann_window(config.n_fft, device=audio.device)
    spec = torch.stft(audio.reshape(b * c, n), config.n_fft, config.hop, window=window, center=True,
                      return_complex=True)
    return spec.reshape(b, c, *spec.shape[-2:])


def istft(spec: torch.Tensor, config: NetConfig, length: int) -> torch.Tensor:
    """complex [B, 2, F, T] -> [B, 2, length]."""
    b, c, f, t = spec.shape
    window = torch.hann_window(config.n_fft, device=spec.device)
    y = torch.istft(spec.reshape(b * c, f, t), config.n_fft, config.hop, window=window, center=True, length=length)
    return y.reshape(b, c, length)


def separate_tensor(net: MaskNet, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, 2, N] mixture -> (vocals, accompaniment) [B, 2, N]; accompaniment = mixture - vocals."""
    spec = stft(audio, net.config)
    mask = net(torch.log(spec.abs() + LOG_FLOOR))
    vocals = istft(spec * mask, net.config, audio.shape[-1])
    return vocals, audio - vocals


def save_weights(net: MaskNet, path: str | os.PathLike, info: Optional[dict[str, Any]] = None) -> None:
    """Write the shipped form: plain float16 tensors + hparams + training info."""
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()}
    doc = {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "hparams": net.config.to_dict(),
           "state_dict": state, "info": info or {}}
    tmp = str(path) + ".part"
    torch.save(doc, tmp)
    os.replace(tmp, path)


def load_weights(path: str | os.PathLike) -> tuple[MaskNet, dict[str, Any]]:
    """(network in eval mode, info) from a weights file; ModelError naming what is wrong with a bad file."""
    from ..safe_load import load_torch

    name = os.path.basename(os.fspath(path))
    doc = load_torch(path, what="starter separation weights")
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"'{name}' is not a starter separation weights file (no '{WEIGHTS_FORMAT}' format tag).")
    if doc.get("version") != WEIGHTS_VERSION:
        raise ModelError(f"'{name}' is version {doc.get('version')} of the starter separation weights; this build "
                         f"reads version {WEIGHTS_VERSION}.")
    try:
        config = NetConfig.from_dict(dict(doc["hparams"]))
        net = MaskNet(config)
        state = {k: v.float() for k, v in doc["state_dict"].items()}
        net.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"'{name}' does not hold a complete starter separation network: {first}") from None
    if not all(torch.isfinite(p).all() for p in net.parameters()):
        raise ModelError(f"'{name}' holds non-finite weights (NaN or inf); the file is damaged.")
    return net.eval(), dict(doc.get("info") or {})


class StarterSeparator(Separator):
    """Registry entry "starter": the shipped mask network (or another weights file given as `weights`)."""

    name = "starter"
    sample_rate = SEPARATION_SAMPLE_RATE
    chunk_seconds = 30.0
    overlap_seconds = 2.0

    def __init__(self, model_path: Optional[str | os.PathLike] = None,
                 weights: Optional[str | os.PathLike] = None) -> None:
        if model_path is not None:
            raise ModelError("The starter separator uses its built-in weights; it takes no model file.")
        self.weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        self.net, self.info = load_weights(self.weights)

    @property
    def label(self) -> str:
        return "Starter network (built in)"

    @torch.inference_mode()
    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """float32 [2, T] -> {"vocals", "accompaniment"} float32 [2, T]; they sum to the input."""
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        vocals, _ = separate_tensor(self.net, x)
        v = vocals[0].numpy()
        return {VOCALS: v, ACCOMPANIMENT: (audio - v).astype(np.float32)}
