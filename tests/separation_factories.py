"""Random-weight files in the community separation families' upstream layouts (tests: small; bench: real size).

- MDX-Net: an .onnx taking/returning [B, 4, dim_f, dim_t] (UVR's layout), from a small TFC-TDF-like U-Net of our
  own (convolutions over (freq, time) with dense layers along frequency), exported by torch.onnx; size "full"
  has Inst_HQ_3's spectrogram (3072 bins x 256 frames, n_fft 6144) and a comparable width.
- Demucs: a `.th` as demucs saves it ({"klass", "args", "kwargs", "state" (fp16), "training_args"}), the model
  class pickled by reference, and a bag-of-models .yaml naming files by signature.
- RoFormer: MSST's layout: a bare state dict `.ckpt` + the config `.yaml` (with !!python/tuple band sizes).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import nn

# -- MDX-Net ---------------------------------------------------------------------------------------------------
MDX_SIZES = {  # n_fft, dim_f, dim_t, channels, levels
    "small": (2048, 256, 32, 8, 2),
    "full": (6144, 3072, 256, 48, 4),  # UVR-MDX-NET-Inst_HQ_3's spectrogram; width of KUIELAB's TFC-TDF nets
}


class _TfcTdf(nn.Module):
    """Two 3x3 convolutions (TFC) then a dense bottleneck along frequency (TDF), residual. x [B, C, F, T]."""

    def __init__(self, channels: int, bins: int) -> None:
        super().__init__()
        self.tfc = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        hidden = max(bins // 16, 4)
        self.tdf = nn.Sequential(nn.Linear(bins, hidden), nn.ReLU(), nn.Linear(hidden, bins), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tfc(x)
        return x + self.tdf(x.transpose(2, 3)).transpose(2, 3)


class MdxLikeNet(nn.Module):
    """[B, 4, F, T] spectrogram -> [B, 4, F, T] spectrogram (a U-Net of TFC-TDF blocks; random weights)."""

    def __init__(self, dim_f: int, channels: int, levels: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(4, channels, 1)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        bins, width = dim_f, channels
        for _ in range(levels):
            self.enc.append(_TfcTdf(width, bins))
            self.down.append(nn.Conv2d(width, width + channels, 2, stride=2))
            bins, width = bins // 2, width + channels
        self.mid = _TfcTdf(width, bins)
        for _ in range(levels):
            self.up.append(nn.ConvTranspose2d(width, width - channels, 2, stride=2))
            bins, width = bins * 2, width - channels
            self.dec.append(_TfcTdf(width, bins))
        self.last = nn.Conv2d(channels, 4, 1)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.first(spec)
        skips = []
        for enc, down in zip(self.enc, self.down):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.mid(x)
        for up, dec in zip(self.up, self.dec):
            x = dec(up(x) * skips.pop())
        return spec * torch.sigmoid(self.last(x))


def make_mdx_onnx(path: str | os.PathLike, size: str = "small", seed: int = 0, batch_axis: bool = True) -> dict:
    """Write an MDX-Net-layout .onnx; returns its settings as UVR's model data keys (for a .yaml beside it)."""
    n_fft, dim_f, dim_t, channels, levels = MDX_SIZES[size]
    torch.manual_seed(seed)
    net = MdxLikeNet(dim_f, channels, levels).eval()
    dummy = torch.randn(1, 4, dim_f, dim_t)
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if batch_axis else None
    with torch.no_grad():
        torch.onnx.export(net, (dummy,), os.fspath(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes)
    return {"mdx_n_fft_scale_set": n_fft, "mdx_dim_f_set": dim_f, "mdx_dim_t_set": int(np.log2(dim_t)),
            "compensate": 1.035, "primary_stem": "Instrumental"}


def write_yaml(path: str | os.PathLike, doc: dict) -> Path:
    import yaml

    Path(path).write_text(yaml.safe_dump(doc))
    return Path(path)


# -- Demucs ----------------------------------------------------------------------------------------------------
DEMUCS_SOURCES = ["drums", "bass", "other", "vocals"]
DEMUCS_SIZES = {
    "small": dict(channels=4, depth=4, nfft=2048, t_layers=1, t_heads=2, dconv_comp=4, t_hidden_scale=1.0,
                  segment=Fraction(2)),
    # htdemucs as published (demucs's htdemucs config: 48 channels, depth 4, nfft 4096, 5 cross-transformer
    # layers over a 384-wide bottom, segment 7.8 s)
    "full": dict(channels=48, depth=4, nfft=4096, t_layers=5, bottom_channels=512, dconv_mode=3,
                 segment=Fraction(39, 5)),
}


def demucs_package(size: str = "small", seed: int = 0, klass: object = None) -> dict:
    """The dict demucs's serialize_model writes: class by reference, its arguments, fp16 state, training args."""
    from demucs.htdemucs import HTDemucs

    kwargs = dict(sources=list(DEMUCS_SOURCES), audio_channels=2, samplerate=44100, **DEMUCS_SIZES[size])
    torch.manual_seed(seed)
    model = HTDemucs(**kwargs)
    state = {k: v.detach().half() for k, v in model.state_dict().items()}
    return {"klass": klass or HTDemucs, "args": (), "kwargs": kwargs, "state": state,
            "training_args": {"dset": {"name": "musdb", "segment": 11}, "seed": seed, "optim": {"lr": 3e-4}}}


def make_demucs_th(path: str | os.PathLike, size: str = "small", seed: int = 0) -> Path:
    torch.save(demucs_package(size, seed), os.fspath(path))
    return Path(path)
