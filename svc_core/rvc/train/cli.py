"""The `--arch rvc` branch of `python -m svc_core train` and `train-index --kind rvc` (svc_core/train/cli.py adds
the arguments and calls these)."""
from __future__ import annotations

import argparse
import sys

RVC_DEFAULTS = {"save_every": 200, "keep": 2, "log_interval": 10}  # CPU-sized; RVC saves per epoch


def add_arguments(p: argparse.ArgumentParser) -> None:
    """RVC-only options of `train` (the shared ones -- --data, --out, --steps, ... -- are the so-vits parser's)."""
    g = p.add_argument_group("RVC (--arch rvc)")
    g.add_argument("--version", choices=("v1", "v2"), default="v2",
                   help="RVC v2 (768-dim content, default) or v1 (256-dim)")
    g.add_argument("--sr", choices=("32k", "40k", "48k"), default="40k", help="model sample rate (default 40k)")
    g.add_argument("--no-pitch", action="store_true", help="train a model without pitch input (RVC's *_nono)")
    g.add_argument("--size", choices=("full", "small"), default=None,
                   help="full = RVC's network sizes (default on a GPU); small = narrower, still an RVC file (default "
                        "on a CPU)")
    g.add_argument("--encoder", default=None,
                   help="content encoder (default vec768l12 for v2, vec256l9 for v1; any registered encoder with the "
                        "version's width)")
    g.add_argument("--encoder-path", default=None, help="its weights file (default: ./pretrain or $SVC_PRETRAIN_DIR)")
    g.add_argument("--f0", dest="f0_method", default="auto",
                   help="f0 predictor for the training pieces (auto: rmvpe when rmvpe.pt is found, else fcpe)")
    g.add_argument("--f0-weights", default=None, help="rmvpe.pt path when --f0 rmvpe")
    g.add_argument("--speaker", default=None, help="train only this speaker folder of --data (default: all)")
    g.add_argument("--name", default=None, help="small model / index name (default: the --out folder's name)")
    g.add_argument("--save-every", type=int, default=None,
                   help=f"steps between G_/D_ saves (default {RVC_DEFAULTS['save_every']}; --eval-interval also "
                        "sets it)")
    g.add_argument("--save-every-weights", action="store_true",
                   help="also write a small model <name>_e<epoch>_s<step>.pth at every save")
    g.add_argument("--no-index", action="store_true", help="do not train the faiss index afterwards")
    g.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes of training (saves; continue later with --resume)")
    g.add_argument("--max-frames", type=int, default=None,
                   help="frames per piece per step (RVC: 900 = whole pieces, default on a GPU); fewer = a random "
                        "window, faster (default on a CPU: 160)")


SOVITS_ONLY = (("posterior_input", "--posterior-input"), ("c_harm", "--c-harm"), ("precision", "--precision"),
               ("workers", "--workers"))


def settings_from_args(args: argparse.Namespace):
    from ...errors import OptionError
    from .settings import RvcTrainSettings

    given = [flag for name, flag in SOVITS_ONLY if getattr(args, name, None) is not None]
    if given:
        raise OptionError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for so-vits training; "
                          "--arch rvc trains with RVC's losses in fp32.")

    values = dict(
        data_dir=args.data, out_dir=args.out, version=args.version, sample_rate=args.sr, f0=not args.no_pitch,
        size=args.size, encoder=args.encoder, encoder_path=args.encoder_path, f0_method=args.f0_method,
        f0_weights=args.f0_weights, speaker=args.speaker, name=args.name, steps=args.steps,
        save_every=args.save_every or args.eval_interval or RVC_DEFAULTS["save_every"],
        keep=RVC_DEFAULTS["keep"] if args.keep_best is None else args.keep_best,
        log_interval=args.log_interval or RVC_DEFAULTS["log_interval"],
        save_every_weights=args.save_every_weights, resume=args.resume, base=tuple(args.base) if args.base else None,
        threads=args.threads, build_index=not args.no_index, d_width_divisor=args.d_width_divisor,
        gan_start_step=args.gan_start_step, max_minutes=args.max_minutes, max_frames=args.max_frames,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed)
    return RvcTrainSettings.for_device(args.device, **values)


def run_rvc_train(args: argparse.Namespace) -> int:
    import torch

    from .index import train_rvc_index
    from .prepare import prepare_experiment
    from .trainer import RvcTrainer

    settings = settings_from_args(args)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    summary = prepare_experiment(settings)
    print(f"experiment {summary.layout.root}: {summary.describe()}")
    trainer = RvcTrainer(settings)
    result = trainer.fit()
    if result.interrupted:
        print(f"interrupted at step {result.step}; continue with --resume", file=sys.stderr)
        return 130
    print(f"done: step {result.step}, epoch {result.epoch}, {result.seconds / 60:.1f} min; small model "
          f"{result.small_model}")
    if settings.build_index:
        print(f"index: {train_rvc_index(settings.out_dir, settings.version, settings.model_name, settings.seed)}")
    return 0


def run_rvc_index(args: argparse.Namespace) -> int:
    """`train-index --kind rvc --data <experiment folder> [-o ignored] [--version v1|v2]`."""
    from .index import train_rvc_index
    from .layout import feature_dir_name
    from pathlib import Path

    exp = Path(args.data)
    version = getattr(args, "version", None)
    if version is None:  # the folder tells: 3_feature768 (v2) or 3_feature256 (v1)
        version = "v1" if (exp / feature_dir_name("v1")).is_dir() and not (exp / feature_dir_name("v2")).is_dir() \
            else "v2"
    print(f"index: {train_rvc_index(exp, version, getattr(args, 'name', None), args.seed)}")
    return 0
