"""Arguments and entry point of `python -m svc_core preprocess` (registered in svc_core/cli.py)."""
from __future__ import annotations

import argparse
import sys

from ..errors import AudioError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="input", required=True,
                   help="folder of audio: one subfolder per speaker (nested folders allowed), or one speaker's files")
    p.add_argument("--out", dest="output", required=True, help="dataset folder to create or update")
    p.add_argument("--encoder", default="vec768l12", help="content encoder: vec768l12 (default), vec256l9, "
                   "hubertsoft, ...")
    p.add_argument("--encoder-path", default=None, help="encoder weights file or folder (default ./pretrain or "
                   "$SVC_PRETRAIN_DIR)")
    p.add_argument("--f0", default="auto", help="f0 predictor: rmvpe, fcpe, pm, dio, harvest, crepe, crepe-tiny, "
                   "or auto (rmvpe when rmvpe.pt is found, else fcpe)")
    p.add_argument("--rmvpe", default=None, help="rmvpe.pt (default ./pretrain or $SVC_PRETRAIN_DIR)")
    p.add_argument("--skip-loudnorm", action="store_true", help="keep the recordings' levels")
    p.add_argument("--target-lufs", type=float, default=-23.0, help="clip loudness, LUFS (default -23)")
    p.add_argument("--peak-dbfs", type=float, default=-1.0, help="sample-peak ceiling, dBFS (default -1)")
    p.add_argument("--val-per-speaker", type=int, default=2, help="validation clips per speaker (default 2)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the validation pick")
    p.add_argument("--vol-embedding", action="store_true", help="config: model.vol_embedding and train.vol_aug")
    p.add_argument("--use-diff", action="store_true",
                   help="also the shallow-diffusion caches (vocoder mel, pitch/volume-augmented mel and volume) and "
                        "diffusion.yaml, for train-diff (upstream's --use_diff)")
    p.add_argument("--vocoder", default=None,
                   help="with --use-diff: NSF-HiFiGAN model file or folder whose mel settings to use (default: "
                        "openvpi nsf_hifigan's: 128 bins, n_fft 2048, hop 512, 40-16000 Hz)")
    p.add_argument("--diff-size", choices=("small", "full"), default="small",
                   help="with --use-diff: diffusion.yaml's model size: small (CPU training, default) or full "
                        "(upstream's 20 layers x 512 channels; needed to fine-tune a pretrained model_0.pt)")
    p.add_argument("--min-seconds", type=float, default=2.0, help="shortest clip (default 2)")
    p.add_argument("--max-seconds", type=float, default=15.0, help="longest clip (default 15)")
    p.add_argument("--slice-db", type=float, default=-40.0, help="silence threshold for slicing, dBFS")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from .progress import EtaPrinter
    from .runner import prepare_dataset
    from .settings import PreprocessSettings

    settings = PreprocessSettings(
        input_dir=args.input, output_dir=args.output, encoder=args.encoder, encoder_path=args.encoder_path,
        f0=args.f0, f0_weights=args.rmvpe, device=args.device, min_seconds=args.min_seconds,
        max_seconds=args.max_seconds, slice_db=args.slice_db, loudnorm=not args.skip_loudnorm,
        target_lufs=args.target_lufs, peak_dbfs=args.peak_dbfs, val_per_speaker=args.val_per_speaker,
        seed=args.seed, vol_embedding=args.vol_embedding, jobs=args.jobs, use_diff=args.use_diff,
        mel_vocoder=args.vocoder, diff_size=args.diff_size,
    )
    result = prepare_dataset(settings, progress=None if args.quiet else EtaPrinter(sys.stderr))
    print(result.text, end="")
    if result.report["totals"]["clips"] == 0:
        raise AudioError("No clip could be made from the input; see the skipped files above.")
    extra = ", diffusion.yaml" if settings.use_diff else ""
    print(f"wrote {result.output_dir} (config.json{extra}, filelists/, report.txt)")
    return 0 if result.ok else 1
