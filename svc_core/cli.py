"""Command line: `python -m svc_core infer ...` and friends. Errors print one readable line and exit 2."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

import torch

from .errors import AudioError, OptionError, SvcError
from .paths import require_file
from .precision import ONNX_PRECISIONS, PRECISIONS

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = fn
        return fn

    return register


def _add_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", required=True,
                   help="generator checkpoint G_*.pth, or an export-onnx .onnx file (runs on ONNX Runtime)")
    p.add_argument("-c", "--config", default=None, help="the model's config.json (optional for our .onnx exports; "
                   "an upstream <name>_SoVits.onnx uses the one beside it when not given)")
    p.add_argument("-i", "--input", required=True, help="audio file to convert (any rate, mono or stereo)")
    p.add_argument("-o", "--output", required=True, help="output file (.wav/.flac), written at the model rate")
    p.add_argument("-s", "--speaker", default=None, help="speaker name from config.json or its numeric id "
                   "(optional for a single-speaker model)")
    p.add_argument("-t", "--transpose", type=float, default=0.0, help="pitch shift in semitones (default 0)")
    p.add_argument("--f0", default="auto", help="f0 predictor: pm, dio, harvest, crepe, crepe-tiny, fcpe, rmvpe, "
                   "or auto (rmvpe when rmvpe.pt is available, else fcpe)")
    p.add_argument("--encoder", default=None, help="content encoder weights (e.g. checkpoint_best_legacy_500.pt), "
                   "or an encoder exported with `export-onnx --encoder` (.onnx, also int8)")
    p.add_argument("--encoder-name", default=None, help="override the encoder named in config.json")
    p.add_argument("--rmvpe", default=None, help="rmvpe.pt (default: ./pretrain or $SVC_PRETRAIN_DIR)")
    p.add_argument("--cluster", default=None, help="k-means (kmeans_10000.pt) or index (feature_and_index.pkl)")
    p.add_argument("--cluster-ratio", type=float, default=0.0, help="0..1 share of cluster/retrieved features")
    p.add_argument("--noise-scale", type=float, default=0.4)
    p.add_argument("--slice-db", type=float, default=-40.0, help="silence threshold for slicing, dBFS")
    p.add_argument("--pad-seconds", type=float, default=0.5)
    p.add_argument("--clip-seconds", type=float, default=0.0, help="force-split slices into pieces (0 = off)")
    p.add_argument("--crossfade-seconds", type=float, default=0.0)
    p.add_argument("--crossfade-ratio", type=float, default=0.75)
    p.add_argument("--loudness-mix", type=float, default=1.0, help="1 = model envelope, 0 = input envelope")
    p.add_argument("--f0-threshold", type=float, default=None,
                   help="voicing confidence threshold of crepe/rmvpe/fcpe (default: 0.05, fcpe 0.4)")
    p.add_argument("--auto-f0", action="store_true", help="predict f0 with the model (speech; ignores -t)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--vocoder-precision", choices=PRECISIONS + ONNX_PRECISIONS[1:], default="fp32",
                   help="torch backend: bf16 (CPUs with AVX512-BF16/AMX, or CUDA) or fp16 (CUDA) runs the vocoder "
                        "~2x faster, not bit-exact (max abs 3e-3 on a trained voice); ONNX backend: int8 (an export "
                        "made with --int8-vocoder), 2.3-2.8x faster, not bit-exact (default fp32)")
    p.add_argument("--encoder-precision", choices=PRECISIONS, default="fp32",
                   help="a content encoder running in torch in bf16 (CPUs with AVX512-BF16/AMX, or CUDA) or fp16 "
                        "(CUDA): ~2x faster encoder, features within ~2 %% of float32 (default fp32)")


@command("infer")
def run_infer(args: argparse.Namespace) -> int:
    from .pipeline import Svc

    if args.threads:
        torch.set_num_threads(args.threads)
    from .f0 import resolve_predictor

    f0_name = resolve_predictor(args.f0, args.rmvpe)
    from .audio import check_output_path

    check_output_path(args.output, require_file(args.input, "Audio file", AudioError))  # before loading anything
    encoder, encoder_path = args.encoder_name, args.encoder
    if encoder_path and encoder_path.lower().endswith(".onnx"):
        from .onnx import OnnxEncoder

        encoder, encoder_path = OnnxEncoder(encoder_path, threads=args.threads or None), None
    f0_weights = {"rmvpe": args.rmvpe} if args.rmvpe else None
    if args.model.lower().endswith(".onnx"):
        from .onnx import OnnxSvc

        svc = OnnxSvc(args.model, args.config, encoder_path=encoder_path, cluster_path=args.cluster,
                      device="auto" if args.device == "cpu" else args.device, encoder=encoder, f0_weights=f0_weights,
                      threads=args.threads or None)
    elif not args.config:
        raise OptionError("-c/--config is needed with a .pth model (only .onnx exports carry their config).")
    else:
        svc = Svc(args.model, args.config, encoder_path=encoder_path, cluster_path=args.cluster, device=args.device,
                  encoder=encoder, f0_weights=f0_weights)
    if args.speaker is None:
        speaker: str | int = svc.config.only_speaker("-s NAME (or its id)")
    else:
        speaker = int(args.speaker) if args.speaker.isdigit() and args.speaker not in svc.config.spk else args.speaker
    result = svc.convert_file(  # block by block: memory does not grow with the input's length
        args.input, args.output, speaker, transpose=args.transpose, f0_predictor=f0_name,
        cluster_ratio=args.cluster_ratio,
        noise_scale=args.noise_scale, slice_db=args.slice_db, pad_seconds=args.pad_seconds,
        clip_seconds=args.clip_seconds, crossfade_seconds=args.crossfade_seconds,
        crossfade_ratio=args.crossfade_ratio, loudness_mix=args.loudness_mix, f0_threshold=args.f0_threshold,
        auto_predict_f0=args.auto_f0, vocoder_precision=args.vocoder_precision,
        encoder_precision=args.encoder_precision,
        cache=False,  # one conversion per process: cached features are never reused
        progress=lambda frac, msg: print(f"[{frac:6.1%}] {msg}", file=sys.stderr),
    )
    times = svc.last_times
    engines = [getattr(x, "session_info", None) for x in (svc, svc.encoder)]
    print(f"f0 predictor: {f0_name}; encoder: {svc.encoder.name}"
          + (f" ({engines[1].describe()})" if engines[1] else "")
          + (f" {args.encoder_precision}" if args.encoder_precision != "fp32" else "")
          + f"; torch threads: {torch.get_num_threads()}; "
          + f"synthesizer: {engines[0].describe() if engines[0] else 'torch eager'}"
          + (f", vocoder {args.vocoder_precision}" if args.vocoder_precision != "fp32" else ""))
    for name, sec in svc.load_times.seconds.items():
        print(f"{name:<14}{sec:>10.3f}  (one-off)")
    print(times.table())
    print(f"wrote {args.output} ({result.seconds:.2f} s at {svc.sample_rate} Hz)")
    return 0


@command("doctor")
def run_doctor(args: argparse.Namespace) -> int:
    from .doctor import collect, report

    info = collect()
    if args.json:
        import json

        print(json.dumps(info, indent=2))
    else:
        print(report(info))
    return 0


@command("preprocess")
def run_preprocess(args: argparse.Namespace) -> int:
    from .preprocess.cli import run

    return run(args)


def _add_preprocess_parser(sub) -> None:
    from .preprocess.cli import add_arguments

    add_arguments(sub.add_parser("preprocess", help="prepare a training dataset from a folder of audio"))


@command("train")
def run_train(args: argparse.Namespace) -> int:
    from .train.cli import run_train as run

    return run(args)


@command("train-index")
def run_train_index(args: argparse.Namespace) -> int:
    from .train.cli import run_train_index as run

    return run(args)


@command("validate-checkpoint")
def run_validate_checkpoint(args: argparse.Namespace) -> int:
    from .train.cli import run_validate_checkpoint as run

    return run(args)


def _add_train_parsers(sub) -> None:
    from .train.cli import add_parsers  # "train", "validate-checkpoint" and "train-index"

    add_parsers(sub)


@command("tunnel")
def run_tunnel(args: argparse.Namespace) -> int:
    from .tunnel.cli import run

    return run(args)


def _add_tunnel_parser(sub) -> None:
    from .tunnel.cli import add_arguments  # issue #5: frpc / ssh -R public link for a running app

    add_arguments(sub.add_parser("tunnel", help="open a supervised public tunnel (frp or ssh) to the web demo"))


@command("export-onnx")
def run_export_onnx(args: argparse.Namespace) -> int:
    from .onnx.cli import run

    return run(args)


def _add_export_onnx_parser(sub) -> None:
    from .onnx.cli import add_parser  # issue #6: synthesizer -> ONNX with upstream's interface + manifest

    add_parser(sub)


@command("prepare-world")
def run_prepare_world(args: argparse.Namespace) -> int:
    from .worldvoice.cli import run_prepare

    return run_prepare(args)


@command("train-world")
def run_train_world(args: argparse.Namespace) -> int:
    from .worldvoice.cli import run_train

    return run_train(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m svc_core", description="so-vits-svc 4.x voice conversion")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_infer_args(sub.add_parser("infer", help="convert an audio file with a so-vits-svc model"))
    doctor = sub.add_parser("doctor", help="versions, threads, usable encoders/f0 predictors, missing weights")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    _add_preprocess_parser(sub)
    _add_train_parsers(sub)
    _add_tunnel_parser(sub)
    _add_export_onnx_parser(sub)
    from .worldvoice.cli import add_parsers as add_world_parsers  # WORLD voices (the starter voices)

    add_world_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        return COMMANDS[args.command](args)
    except SvcError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - start:.1f} s", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: ran out of memory; try --clip-seconds 20 or a shorter input", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
