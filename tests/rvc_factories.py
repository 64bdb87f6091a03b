"""Builders of RVC-layout voice files with random weights, for tests (no downloads needed).

    path = make_rvc_model(tmp_path / "voice.pth", version="v2", sr="40k")
    voice = svc_core.rvc.load_rvc_voice(path)
"""
from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import torch

from svc_core.rvc.checkpoint import save_rvc_small, save_rvc_training
from svc_core.rvc.hparams import RvcHParams, preset
from svc_core.rvc.synthesizer import RvcSynthesizer

# Channel sizes of RVC's parity models in ../shared/compat/parity/rvc (README section 1).
SMALL_SIZES: dict[str, int] = {"inter_channels": 32, "hidden_channels": 32, "filter_channels": 64,
                               "upsample_initial_channel": 64, "gin_channels": 32}
ZERO_FILL_STD = 0.02  # std written into parameters RVC initialises to exactly zero (flow post convs, LN betas)
DEC_GAIN = 1.2  # decoder weight-norm gain (otherwise the small decoder barely depends on its input)
DEC_BIAS_SCALE = 0.1
FULL_SPEAKER_ROWS = 109  # RVC's spk_embed_dim
REPO_ROOT = Path(__file__).resolve().parents[1]
PARITY_MODELS = ("v2_40k_f0", "v1_40k_f0")
APPLIO_DEFAULTS: dict[str, Any] = {"vocoder": "HiFi-GAN", "embedder_model": "contentvec", "author": "tests",
                                   "dataset_length": 12.5}


def make_hparams(version: str = "v2", sr: str = "40k", f0: bool = True, size: str = "small",
                 speakers: int = 1) -> RvcHParams:
    """RVC's preset for (version, sr) with the parity models' small channels, or full size (RVC's real widths)."""
    if size == "small":
        return preset(version, sr, f0, spk_embed_dim=max(speakers, 1), **SMALL_SIZES)
    if size == "full":
        return preset(version, sr, f0, spk_embed_dim=max(speakers, FULL_SPEAKER_ROWS))
    raise ValueError(f"size must be 'small' or 'full', got {size!r}")


def make_random_net(hp: RvcHParams, seed: int = 0, posterior: bool = False) -> RvcSynthesizer:
    """RvcSynthesizer with seeded random weights; exact-zero parameters refilled so every tensor matters."""
    torch.manual_seed(seed)
    net = RvcSynthesizer(hp, posterior=posterior)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if not bool(p.any()):
                p.copy_(torch.randn(p.shape, generator=gen) * ZERO_FILL_STD)
            if name.startswith("dec.") and name.endswith("original0"):
                p.fill_(DEC_GAIN)
            elif name.startswith("dec.") and name.endswith("bias"):
                p.mul_(DEC_BIAS_SCALE)
    return net


def make_rvc_model(path: str | Path, version: str = "v2", sr: str = "40k", f0: bool = True, size: str = "small",
                   seed: int = 0, kind: str = "rvc-small", speakers: int = 1, half: bool = True) -> Path:
    """Write an RVC voice file with random weights in RVC's layout: "rvc-small" (RVC's savee), "applio" (Applio's
    extract_model fields), or "rvc-training" (G_*.pth + logs/<exp>/config.json beside it)."""
    path = Path(path)
    hp = make_hparams(version, sr, f0, size, speakers)
    net = make_random_net(hp, seed, posterior=kind == "rvc-training")
    if kind == "rvc-small":
        save_rvc_small(net, hp, path, info="1epoch", half=half)
    elif kind == "applio":
        extra = dict(APPLIO_DEFAULTS, epoch=1, step=10, sr=hp.sr, f0=bool(f0), model_name=path.stem,
                     creation_date=datetime.datetime(2026, 1, 1).isoformat(), model_hash="0" * 64,
                     speakers_id=speakers)
        save_rvc_small(net, hp, path, half=half, extra=extra)
        obj = torch.load(path, weights_only=True)
        del obj["info"]  # Applio writes no 'info'
        torch.save(obj, path)
    elif kind == "rvc-training":
        save_rvc_training(net, path, iteration=seed + 1)
    else:
        raise ValueError(f"kind must be 'rvc-small', 'applio' or 'rvc-training', got {kind!r}")
    return path


def parity_model(name: str, parity_dir: str | Path | None = None) -> Path:
    """The fixture model <parity>/rvc/models/rvc_small_<name>.pth (written by RVC itself); parity_dir defaults to
    ../shared/compat/parity as tests/conftest.py finds it."""
    if name not in PARITY_MODELS:
        raise ValueError(f"unknown RVC parity model {name!r}; one of {PARITY_MODELS}")
    if parity_dir is None:
        parity_dir = Path(os.environ.get("SVC_SHARED_DIR", REPO_ROOT.parent / "shared")) / "compat" / "parity"
    return Path(parity_dir) / "rvc" / "models" / f"rvc_small_{name}.pth"
