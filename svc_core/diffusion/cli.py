"""Diffusion and enhancer flags of `python -m svc_core infer`: upstream's (-shd -dm -dc -ks -se -od -eh -eak) and ours."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from ..errors import OptionError
from ..options import DIFFUSION_METHODS

DIFFUSION_FOLDER = "diffusion"  # upstream: logs/44k/diffusion/ beside logs/44k/G_*.pth


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("shallow diffusion and enhancer (so-vits-svc 4.1 diffusion models)")
    g.add_argument("--shallow-diffusion", "-shd", "--shallow_diffusion", dest="shallow_diffusion",
                   action="store_true", help="re-render the so-vits output's mel with the diffusion model (removes "
                   "buzz and hoarseness); the model is -dm, else the newest diffusion/model_*.pt beside -m")
    g.add_argument("--diffusion-model", "-dm", "--diffusion_model_path", dest="diffusion_model", default=None,
                   help="diffusion checkpoint model_*.pt (logs/44k/diffusion/), or its folder")
    g.add_argument("--diffusion-config", "-dc", "--diffusion_config_path", dest="diffusion_config", default=None,
                   help="its config.yaml (default: the one beside the checkpoint)")
    g.add_argument("--k-step", "-ks", "--k_step", dest="k_step", type=int, default=100,
                   help="shallow diffusion depth in steps (1..k_step_max of the model; default 100)")
    g.add_argument("--diffusion-method", choices=DIFFUSION_METHODS, default=None,
                   help="sampler (default: the config's infer.method, upstream dpm-solver++)")
    g.add_argument("--diffusion-speedup", type=int, default=None,
                   help="diffusion steps per denoiser call (default: the config's infer.speedup, upstream 10)")
    g.add_argument("--second-encoding", "-se", "--second_encoding", dest="second_encoding", action="store_true",
                   help="re-encode the so-vits output for the diffusion model's units (can help, or blur)")
    g.add_argument("--only-diffusion", "-od", "--only_diffusion", dest="only_diffusion", action="store_true",
                   help="the diffusion model renders the mel from noise; no so-vits model (-m) needed")
    g.add_argument("--vocoder", default=None, help="NSF-HiFiGAN mel vocoder `model` file or folder (default: the "
                   "config.yaml's vocoder.ckpt, else pretrain/nsf_hifigan/model)")
    g.add_argument("--enhance", "-eh", "--enhance", dest="enhance", action="store_true",
                   help="re-vocode the so-vits output with the NSF-HiFiGAN mel vocoder (ignored with diffusion)")
    g.add_argument("--enhancer-key", "-eak", "--enhancer_adaptive_key", dest="enhancer_key", type=float, default=0.0,
                   help="semitones: run the enhancer for a voice this much higher (default 0)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """ConvertOptions keyword arguments from the flags."""
    return dict(shallow_diffusion=bool(args.shallow_diffusion), only_diffusion=bool(args.only_diffusion),
                k_step=args.k_step, diffusion_method=args.diffusion_method,
                diffusion_speedup=args.diffusion_speedup, second_encoding=bool(args.second_encoding),
                enhance=bool(args.enhance), enhancer_adaptive_key=args.enhancer_key)


def model_files(args: argparse.Namespace) -> tuple[Optional[str], Optional[str]]:
    """(diffusion model, its config.yaml) the flags name, or None when no diffusion is asked for; a folder or a
    missing -dc is resolved the way upstream's layout puts the files."""
    wanted = args.shallow_diffusion or args.only_diffusion or args.diffusion_model
    if not wanted:
        return None, None
    from .loader import find_diffusion_files, find_in_folder

    given = args.diffusion_model
    if given is None:
        if not args.model:
            raise OptionError("-od/--only-diffusion needs the diffusion model: -dm model_*.pt (and -dc config.yaml).")
        given = str(Path(args.model).resolve().parent / DIFFUSION_FOLDER)
    path = Path(given)
    if path.is_dir():
        found = find_in_folder(path) or find_diffusion_files(path)  # the diffusion folder, or a voice folder
        if found is None:
            raise OptionError(f"No diffusion model (model_*.pt with config.yaml) in '{path}'; give it with -dm/-dc.")
        model, config = found
        return str(model), str(args.diffusion_config or config)
    config = args.diffusion_config or path.parent / "config.yaml"
    if not Path(config).is_file():
        raise OptionError(f"The diffusion model '{path.name}' needs its config.yaml: none at '{config}'; give it "
                          "with -dc/--diffusion-config.")
    return str(path), str(config)
