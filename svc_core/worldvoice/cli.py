"""`python -m svc_core prepare-world` and `train-world`: argument definitions and runners (registered in svc_core.cli)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("prepare-world", help="WORLD targets + perturbed content features for a WORLD voice",
                       description="Writes X.wav.world.npy and X.wav.pert.pt next to every clip of a preprocessed "
                                   "dataset's filelists (kept when newer than the clip).")
    p.add_argument("--data", required=True, help="preprocessed dataset folder (config.json, filelists/)")
    p.add_argument("--encoder", default=None,
                   help="content encoder of the voice (default: the dataset's, e.g. phonevec256; phoneppg42, its "
                        "posteriorgram, carries little speaker information)")
    p.add_argument("--encoder-path", default=None, help="content encoder weights (default: the usual lookup)")
    p.add_argument("--perturbed", type=int, default=None, help="perturbed copies per clip (default 2)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")

    t = sub.add_parser("train-world", help="train a WORLD voice (content + f0 + speaker -> WORLD frames)",
                       description="Writes W_{step}.pth, config.json and train.log into --out.")
    t.add_argument("--data", required=True, help="dataset folder, after preprocess and prepare-world")
    t.add_argument("--out", required=True, help="run folder (W_*.pth, config.json, train.log)")
    t.add_argument("--encoder", default=None, help="content encoder (as given to prepare-world; default the dataset's)")
    t.add_argument("--steps", type=int, default=5000)
    t.add_argument("--batch-size", type=int, default=12)
    t.add_argument("--crop-frames", type=int, default=256, help="frames per training window (512 samples each)")
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay to 0)")
    t.add_argument("--eval-interval", type=int, default=500)
    t.add_argument("--hidden", type=int, default=192)
    t.add_argument("--layers", type=int, default=8)
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--resume", action="store_true", help="continue from the highest W_*.pth in --out")


def run_prepare(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..encoders import encoder_info
    from ..train.dataset import read_filelist
    from .prepare import N_PERTURBED, prepare_clips

    data = Path(args.data)
    config = load_config(data / "config.json")
    clips = [c for name in ("train.txt", "val.txt") for c in read_filelist(data / "filelists" / name, data)]

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            print(f"  {done}/{total} clips", flush=True)

    encoder = args.encoder or config.speech_encoder
    encoder_info(encoder)  # unknown names fail here, before any work
    n = prepare_clips(clips, encoder, args.encoder_path, jobs=args.jobs,
                      n_perturbed=N_PERTURBED if args.perturbed is None else args.perturbed, progress=progress,
                      foreign=encoder != config.speech_encoder)
    print(f"prepared {n} clip(s) ({len(clips) - n} were up to date)")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .train import WorldTrainSettings, train_world

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "a", encoding="utf-8") as log_file:
        def log(line: str) -> None:
            print(line, flush=True)
            print(line, file=log_file, flush=True)

        s = WorldTrainSettings(data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size,
                               crop_frames=args.crop_frames, learning_rate=args.lr, eval_interval=args.eval_interval,
                               seed=args.seed, threads=args.threads, resume=args.resume, hidden=args.hidden,
                               layers=args.layers, encoder=args.encoder)
        path = train_world(s, log)
    print(f"last checkpoint: {path}", file=sys.stderr)
    return 0
