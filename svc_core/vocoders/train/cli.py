"""`python -m svc_core train-vocoder`: arguments and runner (registered in svc_core.cli)."""
from __future__ import annotations

import argparse

from .settings import SIZE_PRESETS


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "train-vocoder", help="train or fine-tune the NSF-HiFiGAN mel vocoder (shallow diffusion / enhancer)",
        description="Trains the openvpi-layout NSF-HiFiGAN on a preprocessed dataset's clips and f0 caches. Writes "
                    "model_{step} + state_{step}.pt, config.json and `model` (the best by validation mel L1) into "
                    "--out: the folder loads as a vocoder (-dm ... --vocoder OUT). Running it again on the same "
                    "--out resumes from the newest checkpoint.")
    p.add_argument("--data", required=True, help="preprocessed dataset folder (filelists/, clips with .f0.npy)")
    p.add_argument("--out", required=True, help="run folder, e.g. logs/nsf_hifigan")
    p.add_argument("--steps", type=int, default=None, help="stop at this total step count (default 2000)")
    p.add_argument("--base", default=None,
                   help="vocoder to fine-tune (`model` file or its folder, e.g. pretrain/nsf_hifigan); its "
                        "config.json sets the size")
    p.add_argument("--size", choices=tuple(SIZE_PRESETS), default=None,
                   help="generator size without --base: small (upsample_initial_channel 128, default) or full "
                        "(openvpi's 512)")
    p.add_argument("--batch-size", type=int, default=None, help="default 4")
    p.add_argument("--segment-frames", type=int, default=None, help="training crop in frames (default 32 = 16384 "
                                                                     "samples)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-4)")
    p.add_argument("--c-mel", type=float, default=None, help="mel L1 weight (default 45)")
    p.add_argument("--c-harm", type=float, default=None,
                   help="harmonic loss weight (log-spectrum L1 on 0-4 kHz; default 0 = off)")
    p.add_argument("--gan-start-step", type=int, default=None,
                   help="adversarial terms from this step on (default 0); earlier steps learn the mel L1 alone")
    p.add_argument("--smooth-init", action="store_true", default=None,
                   help="a fresh generator's upsampling layers start as linear interpolation (no per-frame pattern "
                        "from them at step 0; measured: not enough to stop the early frame-rate buzz)")
    p.add_argument("--d-width-divisor", type=int, default=None,
                   help="divide the discriminator's channels (default 4; 1 = full size)")
    p.add_argument("--interval-val", type=int, default=None, help="steps between checkpoint + validation (250)")
    p.add_argument("--interval-log", type=int, default=None, help="steps between progress lines (20)")
    p.add_argument("--keep-best", type=int, default=None, help="checkpoints kept by validation mel L1 (2; 0 = all)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...errors import OptionError
    from ...train.cli import _setup_logging
    from .settings import VocoderTrainSettings
    from .trainer import VocoderTrainer

    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("--device cuda was given but no CUDA GPU is available; use --device cpu.")
    if args.base and args.size:
        raise OptionError("--size and --base exclude each other: a fine-tuned vocoder keeps its base's size.")
    if args.threads:
        torch.set_num_threads(args.threads)
    _setup_logging()
    settings = VocoderTrainSettings().replace(
        steps=args.steps, base=args.base, size=args.size, batch_size=args.batch_size,
        segment_frames=args.segment_frames, learning_rate=args.lr, c_mel=args.c_mel, c_harm=args.c_harm,
        gan_start_step=args.gan_start_step, smooth_init=args.smooth_init, d_width_divisor=args.d_width_divisor, interval_val=args.interval_val,
        interval_log=args.interval_log, keep_best=args.keep_best, device=args.device, seed=args.seed)
    summary = VocoderTrainer(args.data, args.out, settings).fit()
    if summary.interrupted:
        print(f"interrupted at step {summary.step}; run the same command again to resume", flush=True)
        return 130
    print(f"done: step {summary.step}; the vocoder is {args.out}/model (+ config.json)")
    return 0
