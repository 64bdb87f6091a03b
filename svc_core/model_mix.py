"""Static voice mixing (upstream webUI's 静态声线融合): one model whose weights blend several models'.

`python -m svc_core mix-models -i a.pth:60 b.pth:40 -c config.json -o mixed.pth [--mode convex|linear]`.
Every tensor is the weighted sum of the models' tensors. Weights are percentages as in upstream: "convex" (upstream's
default) turns them into a softmax over the percentages divided by 100, so they sum to 1; "linear" uses each
percentage / 100 as it is. The models must share one architecture (the config's model section); each file is read
safely and checked against the config, and the result is loaded back before it is kept. Cluster / index files of
the source models do not fit the mix.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import read_generator_state, validate
from .config import load_config
from .errors import ModelError, OptionError
from .models.state_io import release_state
from .release import save_checked

MODES = ("convex", "linear")


def mix_weights(percents: list[float], mode: str) -> torch.Tensor:
    """Percentages -> the factor of each model: convex = softmax(percent / 100), linear = percent / 100."""
    if mode not in MODES:
        raise OptionError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}.")
    rates = torch.tensor(percents, dtype=torch.float64) / 100.0
    return torch.softmax(rates, dim=0) if mode == "convex" else rates


def mix_models(paths: list[str | os.PathLike], percents: list[float], config_path: str | os.PathLike,
               dst: str | os.PathLike, mode: str = "convex") -> dict[str, Any]:
    """Write the blend of the generator checkpoints `paths` to `dst` (upstream's layout, no enc_q / optimizer)."""
    if len(paths) < 2 or len(paths) != len(percents):
        raise OptionError("Give two or more models, each with its percentage (a.pth:60 b.pth:40).")
    dst = Path(dst)
    if dst.suffix.lower() != ".pth":
        raise OptionError(f"-o '{dst.name}': write the mixed model to a .pth name (e.g. mixed.pth).")
    if any(Path(p).exists() and dst.exists() and os.path.samefile(p, dst) for p in paths):
        raise OptionError(f"-o '{dst.name}' is one of the models being mixed; choose another output name.")
    weights = mix_weights([float(p) for p in percents], mode)
    config = load_config(config_path)
    mixed: dict[str, torch.Tensor] = {}
    for path, weight in zip(paths, weights.tolist()):
        state = release_state(read_generator_state(path))
        validate(config, state)  # names the field when a model is not of this config's architecture
        if mixed and set(state) != set(mixed):
            raise ModelError(f"'{Path(path).name}' has other tensors than '{Path(paths[0]).name}' "
                             f"({sorted(set(state) ^ set(mixed))[:3]} ...); only models of one architecture mix.")
        for key, value in state.items():
            if key in mixed and value.shape != mixed[key].shape:
                raise ModelError(f"'{Path(path).name}': {key} is {list(value.shape)}, the first model's "
                                 f"{list(mixed[key].shape)}; only models of one architecture mix.")
            term = value.double() * weight if value.is_floating_point() else value
            mixed[key] = term if key not in mixed or not value.is_floating_point() else mixed[key] + term
    mixed = {k: (v.float() if v.is_floating_point() else v) for k, v in mixed.items()}
    save_checked(mixed, dst, config_path)
    return {"weights": weights.tolist(), "tensors": len(mixed), "mode": mode}


def _model_and_percent(text: str) -> tuple[str, float]:
    path, sep, percent = text.rpartition(":")
    try:
        return (path, float(percent)) if sep and path else (text, 100.0)  # 100: upstream's default percentage
    except ValueError:  # no percentage (a Windows drive letter's ":" is not one)
        return text, 100.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", required=True, nargs="+", type=_model_and_percent, metavar="G.pth[:PERCENT]",
                   help="the models to mix, each with its percentage (default 100)")
    p.add_argument("-c", "--config", required=True, help="config.json of these models (one architecture)")
    p.add_argument("-o", "--output", required=True, help="the mixed model to write (.pth)")
    p.add_argument("--mode", choices=MODES, default="convex",
                   help="convex: softmax of the percentages / 100 (upstream's default); linear: percentage / 100")


def run(args: argparse.Namespace) -> int:
    paths, percents = [p for p, _ in args.input], [w for _, w in args.input]
    info = mix_models(paths, percents, args.config, args.output, mode=args.mode)
    shares = ", ".join(f"{Path(p).name} x {w:.4f}" for p, w in zip(paths, info["weights"]))
    print(f"wrote {args.output}: {info['tensors']} tensors, {info['mode']} mix: {shares}")
    return 0
