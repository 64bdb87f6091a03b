"""Release files from training checkpoints (upstream's compress_model.py): `python -m svc_core compress-model`.

A training G_*.pth carries the posterior encoder (enc_q, used only in training) and the AdamW state, about three
times the size of what inference needs. The release file keeps every other tensor exactly (or as fp16 with
--half) in upstream's layout, so upstream and this engine both load it; it is checked against the config and
loaded back before it replaces anything.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_synthesizer, read_generator_state, validate
from .config import load_config
from .errors import ModelError, OptionError
from .models.state_io import release_state
from .paths import require_file
from .safe_load import load_torch


def save_checked(state: dict[str, torch.Tensor], dst: Path, config_path: str | os.PathLike,
                 iteration: int = 0) -> None:
    """Save `state` as a generator file in upstream's release layout (no optimizer state: upstream's loader skips a
    None optimizer) to `dst`, through `dst`.part, kept only if it loads with `config_path`."""
    partial = dst.with_name(dst.name + ".part")
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "iteration": int(iteration), "optimizer": None, "learning_rate": 1e-4}, partial)
    try:
        load_synthesizer(partial, config_path)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dst)


def write_release(src: str | os.PathLike, dst: str | os.PathLike, config_path: str | os.PathLike,
                  half: bool = False) -> dict[str, Any]:
    """Write the release file of the generator checkpoint `src` to `dst`; returns what was kept and the sizes."""
    src, dst = Path(require_file(src, "Generator checkpoint", ModelError)), Path(dst)
    if dst.suffix.lower() != ".pth":
        raise OptionError(f"-o '{dst.name}': write the release file to a .pth name (e.g. G_30400_release.pth).")
    if dst.exists() and os.path.samefile(src, dst):
        raise OptionError(f"-o '{dst.name}' is the input checkpoint; write the release file under another name.")
    state = read_generator_state(src)
    validate(load_config(config_path), state)
    meta = load_torch(src, what="generator checkpoint")
    iteration = int(meta.get("iteration", 0)) if isinstance(meta, dict) else 0
    kept = {k: v.detach().clone() for k, v in release_state(state).items()}
    if half:
        kept = {k: (v.half() if v.is_floating_point() else v) for k, v in kept.items()}
    save_checked(kept, dst, config_path, iteration)
    return {"tensors": len(kept), "dropped": len(state) - len(kept), "iteration": iteration,
            "bytes_in": src.stat().st_size, "bytes_out": dst.stat().st_size, "half": half}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", required=True, help="training checkpoint G_*.pth")
    p.add_argument("-c", "--config", required=True, help="its config.json (the file is checked against it)")
    p.add_argument("-o", "--output", required=True, help="release file to write (.pth)")
    p.add_argument("-hf", "--half", action="store_true", help="store the weights as fp16 (half the size again; "
                   "loaded back as float32, within fp16 rounding of the original)")


def run(args: argparse.Namespace) -> int:
    info = write_release(args.input, args.output, args.config, half=args.half)
    print(f"wrote {args.output}: {info['tensors']} tensors{' in fp16' if info['half'] else ''} (step "
          f"{info['iteration']}); dropped {info['dropped']} training-only tensors (enc_q) and the optimizer state; "
          f"{info['bytes_in'] / 2**20:.1f} MB -> {info['bytes_out'] / 2**20:.1f} MB")
    return 0
