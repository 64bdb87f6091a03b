"""RVC's training files: G_<step>.pth / D_<step>.pth as RVC's utils.save_checkpoint writes them ({'model',
'iteration' (= epoch), 'optimizer', 'learning_rate'}; the generator's state in RVC's key names, enc_q included),
resume from the newest pair, pretrained bases, and the small model <name>.pth (svc_core.rvc.checkpoint.save_rvc_small,
RVC's savee layout: fp16 weights without enc_q, config list, info "<epoch>epoch", sr, f0, version).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from ...errors import ModelError
from ...train.checkpoints import _replace_atomically, load_optimizer_state, read_checkpoint
from ..checkpoint import save_rvc_small, save_rvc_training


def save_training_pair(out_dir: Path, step: int, epoch: int, net_g, net_d, optim_g, optim_d,
                       learning_rate: float) -> tuple[Path, Path]:
    """Write G_{step}.pth (svc_core.rvc.checkpoint.save_rvc_training) and D_{step}.pth atomically."""
    g_path, d_path = out_dir / f"G_{step}.pth", out_dir / f"D_{step}.pth"
    _replace_atomically(lambda p: save_rvc_training(net_g, p, iteration=epoch, optimizer=optim_g,
                                                    learning_rate=learning_rate, write_config=False), g_path)
    payload = {"model": {k: v.detach().cpu().clone() for k, v in net_d.upstream_state_dict().items()},
               "iteration": int(epoch), "optimizer": optim_d.state_dict(), "learning_rate": float(learning_rate)}
    _replace_atomically(lambda p: torch.save(payload, p), d_path)
    return g_path, d_path


def load_generator(net_g, path: Path, what: str = "generator checkpoint"):
    """Load an RVC G_*.pth (training run or pretrained base such as f0G40k.pth) into net_g; returns the read file."""
    ckpt = read_checkpoint(path, what)
    try:
        net_g.load_rvc_state(ckpt.model)
    except ModelError as err:
        raise ModelError(f"{os.path.basename(path)} does not fit the model of these settings (version, sample rate, "
                         f"--size, pitch): {err}") from None
    return ckpt


def load_discriminator(net_d, path: Path, what: str = "discriminator checkpoint"):
    ckpt = read_checkpoint(path, what)
    try:
        net_d.load_upstream_state_dict(ckpt.model)
    except ModelError as err:
        raise ModelError(f"{os.path.basename(path)}: {err} (D files must come from the same version and "
                         "--d-width-divisor)") from None
    return ckpt


def restore_optimizers(pairs, log: Callable[[str], None]) -> None:
    """pairs: (optimizer, saved state, file name); a state that does not fit is skipped with a note."""
    for optim, state, name in pairs:
        why = load_optimizer_state(optim, state)
        if why:
            log(f"optimizer state of {name} not loaded ({why}); starting a fresh AdamW")


def save_small_model(net_g, hp, path: Path, epoch: int, note: str = "") -> Path:
    """The small model RVC WebUI and svc_core load (fp16, no enc_q), info "<epoch>epoch" (+ `note`)."""
    info = f"{epoch}epoch" + (f"; {note}" if note else "")
    save_rvc_small(net_g, hp, path, info=info, half=True)
    return path
