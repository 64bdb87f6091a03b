"""`python -m svc_core train-diff`: arguments and runner (registered in svc_core.cli)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .settings import AMP_DTYPES


def add_parsers(sub) -> None:
    p = sub.add_parser("train-diff", help="train a so-vits-svc 4.1 shallow-diffusion model on a preprocessed dataset",
                       description="Writes upstream-compatible model_{step}.pt + config.yaml into --out (upstream's "
                                   "train_diff.py). The dataset needs `preprocess --use-diff`. Running it again on "
                                   "the same --out resumes from the highest model_{step}.pt.")
    p.add_argument("--data", default=None, help="preprocessed dataset folder (default: the folder of --config)")
    p.add_argument("-c", "--config", default=None, help="diffusion yaml (default: DATA/diffusion.yaml)")
    p.add_argument("--out", default=None, help="run folder (default: the yaml's env.expdir, logs/44k/diffusion)")
    p.add_argument("--steps", type=int, default=None, help="stop at this total step count (default: train.epochs)")
    p.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: train.lr, 1e-4)")
    p.add_argument("--decay-step", type=int, default=None, help="StepLR step size (default: train.decay_step)")
    p.add_argument("--gamma", type=float, default=None, help="StepLR factor (default: train.gamma, 0.5)")
    p.add_argument("--amp", choices=AMP_DTYPES, default=None,
                   help="autocast dtype (default: train.amp_dtype); fp16/bf16 on CUDA, bf16 on CPUs with native "
                        "bf16 (AVX512-BF16 / AMX)")
    p.add_argument("--duration", type=float, default=None, help="training crop, seconds (default: data.duration)")
    p.add_argument("--interval-val", type=int, default=None, help="steps between checkpoint + validation")
    p.add_argument("--interval-log", type=int, default=None, help="steps between progress lines")
    p.add_argument("--interval-force-save", type=int, default=None,
                   help="checkpoints at multiples of this are never deleted (default: train.interval_force_save)")
    p.add_argument("--keep-best", type=int, default=None,
                   help="also keep the N best checkpoints by validation loss (0 = keep all; default 3)")
    p.add_argument("--save-opt", action="store_true", default=None, help="store the AdamW state in checkpoints")
    p.add_argument("--base", default=None, help="pretrained model_0.pt to fine-tune (copied into --out)")
    p.add_argument("--vocoder", default=None,
                   help="NSF-HiFiGAN model file or folder for validation audio (default: the yaml's vocoder.ckpt when "
                        "that file exists, else the sampled mel only)")
    p.add_argument("--no-eval-audio", action="store_true", help="validation loss only (no sampling)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the yaml's device)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 0 on CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=None)


def _setup_logging() -> None:
    from ...train.cli import _setup_logging as setup

    setup()


def run(args: argparse.Namespace) -> int:
    import torch

    from ...errors import OptionError
    from ..config import load_diffusion_config
    from .settings import DiffTrainSettings
    from .trainer import DEFAULT_CONFIG_NAME, DiffTrainer

    if args.data is None and args.config is None:
        raise OptionError("train-diff needs --data DATASET (with diffusion.yaml from preprocess --use-diff) or "
                          "-c diffusion.yaml.")
    data = Path(args.data) if args.data else Path(args.config).parent
    config_path = Path(args.config) if args.config else data / DEFAULT_CONFIG_NAME
    if args.threads:
        torch.set_num_threads(args.threads)
    _setup_logging()
    config = load_diffusion_config(config_path)
    device = args.device or str(config.doc.get("device") or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"{config_path.name} asks for device {device!r} but no CUDA GPU is available; pass "
                          "--device cpu.")
    out = args.out or (config.doc.get("env") or {}).get("expdir") or "logs/44k/diffusion"
    vocoder = args.vocoder or (config.vocoder_ckpt if Path(config.vocoder_ckpt).exists() else None)
    if vocoder is None and not args.no_eval_audio:
        print(f"no vocoder at {config.vocoder_ckpt!r} (the yaml's vocoder.ckpt): validation writes the sampled mel "
              "only; pass --vocoder for audio", flush=True)
    settings = DiffTrainSettings.from_config(
        config, steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr, decay_step=args.decay_step,
        gamma=args.gamma, amp_dtype=args.amp, duration=args.duration, interval_val=args.interval_val,
        interval_log=args.interval_log, interval_force_save=args.interval_force_save, keep_best=args.keep_best,
        save_opt=args.save_opt, base=args.base, vocoder=vocoder, device=device, num_workers=args.workers,
        seed=args.seed, eval_audio=False if args.no_eval_audio else None)
    summary = DiffTrainer(data, out, settings, config_path=config_path).fit()
    if summary.interrupted:
        print(f"interrupted at step {summary.step}; run the same command again to resume", flush=True)
        return 130
    print(f"done: step {summary.step}; checkpoints and config.yaml in {out}")
    return 0
