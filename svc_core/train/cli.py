"""`python -m svc_core train`, `validate-checkpoint` and `train-index`: argument definitions and runners (registered in svc_core.cli)."""
from __future__ import annotations

import argparse
import logging
import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a so-vits-svc 4.x model (or an RVC voice: --arch rvc) on a dataset",
                       description="Writes upstream-compatible G_{step}.pth / D_{step}.pth into --out. Multi-GPU: "
                                   "torchrun --nproc_per_node N -m svc_core train ... --device cuda. With --arch rvc: "
                                   "RVC's experiment folder (pieces, f0, features), G_/D_ files, the small model "
                                   "<name>.pth and the added_IVF*.index in --out.")
    p.add_argument("--arch", choices=("sovits", "rvc"), default="sovits",
                   help="so-vits-svc 4.x (default) or RVC v1/v2 (see the RVC options below)")
    p.add_argument("--data", required=True, help="preprocessed dataset folder (config.json, filelists/, speakers); "
                                                 "--arch rvc also takes a folder of recordings")
    p.add_argument("--out", required=True, help="run folder, e.g. logs/NAME (checkpoints, config.json, eval audio)")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: config epochs)")
    p.add_argument("--epochs", type=int, default=None, help="stop after this many epochs (default: config)")
    p.add_argument("--batch-size", type=int, default=None, help="per process (default: config train.batch_size)")
    p.add_argument("--eval-interval", type=int, default=None, help="steps between validation + checkpoint")
    p.add_argument("--log-interval", type=int, default=None, help="steps between progress lines")
    p.add_argument("--keep-best", type=int, default=None,
                   help="checkpoints kept by validation mel loss (0 = all; default: config train.keep_ckpts)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: config, 1e-4)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from the highest G_/D_ pair in --out")
    p.add_argument("--base", nargs=2, metavar=("G_0.pth", "D_0.pth"), default=None,
                   help="pretrained base models to fine-tune from (copied into --out as G_0.pth / D_0.pth)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default=None,
                   help="autocast on CUDA (default: config train.fp16_run / half_type)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 0 on CPU, 4 on CUDA)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--posterior-input", choices=("spectrum", "envelope"), default=None,
                   help="what the posterior encoder reads: the spectrogram (upstream) or its pitch-free envelope, "
                        "so that pitch can only come from the f0 input (default: config train.posterior_input, "
                        "else spectrum)")
    p.add_argument("--c-harm", type=float, default=None,
                   help="weight of the harmonic loss (log-spectrum L1 with 10-20 Hz bins on 0-4 kHz) that teaches "
                        "a model trained from scratch to follow f0; 0 = off as upstream (default: config "
                        "train.c_harm, else 0)")
    p.add_argument("--gan-start-step", type=int, default=None,
                   help="run the discriminator and adversarial losses from this step on; before it the generator "
                        "learns from the reconstruction losses alone, at about twice the speed (default: config "
                        "train.gan_start_step, else 0 as upstream)")
    p.add_argument("--d-width-divisor", type=int, default=None,
                   help="divide the discriminator's channels (faster on CPU; D files are then not upstream-sized)")
    from ..rvc.train.cli import add_arguments as add_rvc_arguments

    add_rvc_arguments(p)

    v = sub.add_parser("validate-checkpoint", help="mel L1 and f0 following of G_*.pth on a dataset's val clips",
                       description="Infers the validation clips with the checkpoint and reports the mel L1 and how "
                                   "closely the output pitch follows the input f0 (Praat pitch on the output).")
    v.add_argument("--data", required=True, help="preprocessed dataset folder (filelists/val.txt)")
    v.add_argument("checkpoints", nargs="+", help="G_*.pth files (config.json beside them, else the dataset's)")
    v.add_argument("--clips", type=int, default=8, help="validation clips to infer (default 8)")
    v.add_argument("--max-frames", type=int, default=800, help="clips are cut to this many frames")
    v.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")

    q = sub.add_parser("train-index", help="build a k-means cluster file or a faiss feature index from a dataset")
    q.add_argument("--data", required=True, help="preprocessed dataset folder (speaker folders with *.soft.pt); "
                                                 "--kind rvc: an RVC experiment folder (train --arch rvc --out)")
    q.add_argument("--kind", choices=("kmeans", "faiss", "rvc"), default="kmeans",
                   help="rvc: RVC's added_IVF*_Flat_nprobe_1_<name>_<version>.index written into the experiment "
                        "folder (-o is not used)")
    q.add_argument("--clusters", type=int, default=10000, help="k-means centres per speaker (kmeans only)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--max-frames", type=int, default=0,
                   help="kmeans: fit on at most this many frames per speaker, drawn at random (0 = all)")
    q.add_argument("-o", "--output", default=None, help="kmeans_10000.pt or feature_and_index.pkl")


def _setup_logging() -> None:
    root = logging.getLogger("svc_core.train")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def run_train(args: argparse.Namespace) -> int:
    import torch

    from ..config import load_config
    from .settings import TrainSettings
    from .trainer import Trainer

    _setup_logging()
    if args.arch == "rvc":
        from ..rvc.train.cli import run_rvc_train

        return run_rvc_train(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(f"{args.data}/config.json")
    settings = TrainSettings.from_config(
        config, steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, eval_interval=args.eval_interval,
        log_interval=args.log_interval, keep_best=args.keep_best, learning_rate=args.lr, seed=args.seed,
        resume=args.resume, base=tuple(args.base) if args.base else None, device=args.device,
        precision=args.precision, num_workers=args.workers, d_width_divisor=args.d_width_divisor,
        posterior_input=args.posterior_input, c_harm=args.c_harm,
        gan_start_step=args.gan_start_step)
    trainer = Trainer(args.data, args.out, settings)
    try:
        summary = trainer.fit()
    finally:
        from .ddp import shutdown

        shutdown(trainer.dist)
    if summary.interrupted:
        print(f"interrupted at step {summary.step}; continue with --resume", file=sys.stderr)
        return 130
    if trainer.dist.is_main:
        print(f"done: step {summary.step}, epoch {summary.epoch}; checkpoints in {args.out}")
    return 0


def run_validate_checkpoint(args: argparse.Namespace) -> int:
    import torch

    from .validation import validate_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    for path in args.checkpoints:
        result = validate_checkpoint(args.data, path, max_clips=args.clips, max_frames=args.max_frames)
        print(f"{path}: {result.describe()}")
        for name, mel, follow in result.per_clip:
            print(f"  {name}: mel L1 {mel:.4f}, f0 within 50 c {100 * follow.within_50c:.0f} % "
                  f"(median {follow.median_cents:.0f} c, {follow.frames} frames)")
    return 0


def run_train_index(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from .index import train_index

    if args.kind == "rvc":
        from ..rvc.train.cli import run_rvc_index

        _setup_logging()
        return run_rvc_index(args)
    if args.output is None:
        raise OptionError(f"train-index --kind {args.kind} needs -o/--output (the file to write).")

    train_index(args.data, args.output, kind=args.kind, clusters=args.clusters, seed=args.seed,
                max_frames=args.max_frames)
    return 0
