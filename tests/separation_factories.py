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
MDX_SIZES = {  # n_fft, dim_f, dim_t, channels (growth per level), levels, convolutions per block, TDF bottleneck
    "small": (2048, 256, 32, 8, 2, 2, 16),
    # UVR-MDX-NET-Inst_HQ_3's spectrogram (n_fft 6144, 3072 bins x 256 frames) at the width of KUIELAB's TFC-TDF
    # U-Net (32 channels growing by 32 over 5 levels, 3 convolutions per block, bottleneck bins / 8)
    "full": (6144, 3072, 256, 32, 5, 3, 8),
}


class _TfcTdf(nn.Module):
    """Two 3x3 convolutions (TFC) then a dense bottleneck along frequency (TDF), residual. x [B, C, F, T]."""

    def __init__(self, channels: int, bins: int, convs: int = 2, bottleneck: int = 16) -> None:
        super().__init__()
        self.tfc = nn.Sequential(*[m for _ in range(convs) for m in (nn.Conv2d(channels, channels, 3, padding=1),
                                                                     nn.ReLU())])
        hidden = max(bins // bottleneck, 4)
        self.tdf = nn.Sequential(nn.Linear(bins, hidden), nn.ReLU(), nn.Linear(hidden, bins), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tfc(x)
        return x + self.tdf(x.transpose(2, 3)).transpose(2, 3)


class MdxLikeNet(nn.Module):
    """[B, 4, F, T] spectrogram -> [B, 4, F, T] spectrogram (a U-Net of TFC-TDF blocks; random weights)."""

    def __init__(self, dim_f: int, channels: int, levels: int, convs: int = 2, bottleneck: int = 16) -> None:
        super().__init__()
        self.first = nn.Conv2d(4, channels, 1)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        bins, width = dim_f, channels
        for _ in range(levels):
            self.enc.append(_TfcTdf(width, bins, convs, bottleneck))
            self.down.append(nn.Conv2d(width, width + channels, 2, stride=2))
            bins, width = bins // 2, width + channels
        self.mid = _TfcTdf(width, bins, convs, bottleneck)
        for _ in range(levels):
            self.up.append(nn.ConvTranspose2d(width, width - channels, 2, stride=2))
            bins, width = bins * 2, width - channels
            self.dec.append(_TfcTdf(width, bins, convs, bottleneck))
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
    n_fft, dim_f, dim_t, channels, levels, convs, bottleneck = MDX_SIZES[size]
    torch.manual_seed(seed)
    net = MdxLikeNet(dim_f, channels, levels, convs, bottleneck).eval()
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


# -- Shared checks ---------------------------------------------------------------------------------------------
CHUNK_SECONDS, OVERLAP_SECONDS = 1.5, 0.5  # with a 2.5 s song: two chunks


def separate_in_two_chunks(sep, song: np.ndarray, rate: int):
    """Separate `song` [C, T] (2.5 s at `rate` Hz) in 1.5 s chunks overlapping 0.5 s and return the Stems, after
    checking progress came once per chunk (2 chunks) and the vocal and accompaniment have the song's shape."""
    sep.chunk_seconds, sep.overlap_seconds = CHUNK_SECONDS, OVERLAP_SECONDS
    calls = []
    stems = sep.separate(song, rate, progress=lambda done, total: calls.append(done))
    assert calls == [1, 2], calls
    assert stems.vocals.shape == song.shape == stems.accompaniment.shape
    return stems


# -- Demucs ----------------------------------------------------------------------------------------------------
DEMUCS_SOURCES = ["drums", "bass", "other", "vocals"]
DEMUCS_SIZES = {
    "small": dict(channels=4, depth=4, nfft=2048, t_layers=1, t_heads=2, dconv_comp=4, t_hidden_scale=1.0,
                  segment=Fraction(2)),
    # htdemucs as published: 48 channels, depth 4, nfft 4096, 5 cross-transformer layers 512 wide, segment 7.8 s
    # (42.0 M parameters: the 80 MiB fp16 955dfd88.th)
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


# -- RoFormer (MSST layout) ------------------------------------------------------------------------------------
ROFORMER_SIZES = {
    # small: 129 STFT bins (n_fft 256) in 16 bands / 8 mel bands, width 16
    "small": dict(dim=16, depth=1, heads=2, dim_head=8, stft_n_fft=256, stft_win_length=256, stft_hop_length=64,
                  mask_estimator_depth=2, chunk_size=22050, bands=(8,) * 15 + (9,), num_bands=8),
    # the common vocals BS-RoFormer (viperx ep_317 / MSST config_vocals_bs_roformer: 512 wide, 12 deep, 62 bands)
    "full": dict(dim=512, depth=12, heads=8, dim_head=64, stft_n_fft=2048, stft_win_length=2048,
                 stft_hop_length=441, mask_estimator_depth=2, chunk_size=352800,
                 bands=(2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129), num_bands=60),
}


def roformer_yaml(kind: str, size: str = "small", target: str | None = "vocals") -> str:
    """An MSST-style config (the shape of configs/viperx/*.yaml), band tuples tagged !!python/tuple."""
    s = ROFORMER_SIZES[size]
    band_line = ("  freqs_per_bands: !!python/tuple\n" + "".join(f"  - {n}\n" for n in s["bands"])
                 if kind == "bs" else f"  num_bands: {s['num_bands']}\n  sample_rate: 44100\n")
    target_line = f"  target_instrument: {target}\n" if target else ""
    return (f"audio:\n  chunk_size: {s['chunk_size']}\n  n_fft: {s['stft_n_fft']}\n  num_channels: 2\n"
            f"  sample_rate: 44100\n  min_mean_abs: 0.000\n"
            f"model:\n  dim: {s['dim']}\n  depth: {s['depth']}\n  stereo: true\n  num_stems: 1\n"
            f"  time_transformer_depth: 1\n  freq_transformer_depth: 1\n  linear_transformer_depth: 0\n{band_line}"
            f"  dim_head: {s['dim_head']}\n  heads: {s['heads']}\n  attn_dropout: 0.1\n  ff_dropout: 0.1\n"
            f"  flash_attn: true\n  dim_freqs_in: {s['stft_n_fft'] // 2 + 1}\n  stft_n_fft: {s['stft_n_fft']}\n"
            f"  stft_hop_length: {s['stft_hop_length']}\n  stft_win_length: {s['stft_win_length']}\n"
            f"  stft_normalized: false\n  mask_estimator_depth: {s['mask_estimator_depth']}\n"
            "  multi_stft_resolution_loss_weight: 1.0\n"
            "  multi_stft_resolutions_window_sizes: !!python/tuple\n  - 4096\n  - 2048\n  - 1024\n"
            "  multi_stft_hop_size: 147\n  multi_stft_normalized: False\n"
            f"training:\n  batch_size: 2\n  instruments:\n  - vocals\n  - other\n{target_line}  use_amp: true\n"
            "inference:\n  batch_size: 1\n  num_overlap: 2\n")


def _mel_bands_per_bin_counts(n_fft: int, num_bands: int) -> list[int]:
    import librosa

    bank = librosa.filters.mel(sr=44100, n_fft=n_fft, n_mels=num_bands)
    bank[0, 0] = 1.0
    bank[-1, -1] = 1.0
    return (bank > 0).sum(axis=1).tolist()


def roformer_state(kind: str, size: str = "small", seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under MSST's parameter names (written out here, not taken from our network)."""
    s = ROFORMER_SIZES[size]
    g = torch.Generator().manual_seed(seed)
    dim, heads, dh = s["dim"], s["heads"], s["dim_head"]
    inner = heads * dh

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * (shape[-1] ** -0.5 if len(shape) > 1 else 0.1) + \
            (1.0 if len(shape) == 1 else 0.0)

    state: dict[str, torch.Tensor] = {}
    freqs = 1.0 / 10000 ** (torch.arange(0, dh, 2).float() / dh)
    for i in range(s["depth"]):
        for j in (0, 1):  # time, frequency transformer
            p = f"layers.{i}.{j}."
            a, f = p + "layers.0.0.", p + "layers.0.1."
            state |= {a + "norm.gamma": rnd(dim), a + "to_qkv.weight": rnd(3 * inner, dim),
                      a + "to_gates.weight": rnd(heads, dim), a + "to_gates.bias": rnd(heads),
                      a + "to_out.0.weight": rnd(dim, inner), a + "rotary_embed.freqs": freqs.clone(),
                      f + "net.0.gamma": rnd(dim), f + "net.1.weight": rnd(4 * dim, dim),
                      f + "net.1.bias": rnd(4 * dim), f + "net.4.weight": rnd(dim, 4 * dim), f + "net.4.bias": rnd(dim)}
            if kind == "mel":
                state[p + "norm.gamma"] = rnd(dim)
    if kind == "bs":
        state["final_norm.gamma"] = rnd(dim)
        per_band = list(s["bands"])
    else:
        per_band = _mel_bands_per_bin_counts(s["stft_n_fft"], s["num_bands"])
    linears = s["mask_estimator_depth"] + (1 if kind == "mel" else 0)
    hidden = dim * 4
    for b, n in enumerate(per_band):
        w = 2 * n * 2  # complex x stereo
        state |= {f"band_split.to_features.{b}.0.gamma": rnd(w), f"band_split.to_features.{b}.1.weight": rnd(dim, w),
                  f"band_split.to_features.{b}.1.bias": rnd(dim)}
        dims = [dim] + [hidden] * (linears - 1) + [2 * w]
        for k, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            q = f"mask_estimators.0.to_freqs.{b}.0.{2 * k}."
            state |= {q + "weight": rnd(d_out, d_in), q + "bias": rnd(d_out)}
    return state


def make_roformer(folder: str | os.PathLike, kind: str, size: str = "small", seed: int = 0,
                  name: str | None = None, target: str | None = "vocals") -> tuple[Path, Path]:
    """Write <name>.ckpt (bare state dict, as MSST saves) and <name>.yaml beside it; returns both paths."""
    folder = Path(folder)
    name = name or f"{kind}_roformer_{size}"
    ckpt, config = folder / f"{name}.ckpt", folder / f"{name}.yaml"
    torch.save(roformer_state(kind, size, seed), ckpt)
    config.write_text(roformer_yaml(kind, size, target))
    return ckpt, config


def make_demucs_safetensors(path: str | os.PathLike, size: str = "small", seed: int = 0,
                            klass: str = "demucs.htdemucs.HTDemucs") -> Path:
    """demucs 4.1's Hugging Face layout: flat fp16 weights, class name and JSON arguments in the header."""
    import json

    from safetensors.torch import save_file

    package = demucs_package(size, seed)

    def encode(value):
        if isinstance(value, Fraction):
            return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        return value

    meta = {"klass": klass, "args": json.dumps(list(package["args"])),
            "kwargs": json.dumps(encode(package["kwargs"]))}
    save_file({k: v.contiguous() for k, v in package["state"].items()}, os.fspath(path), metadata=meta)
    return Path(path)
