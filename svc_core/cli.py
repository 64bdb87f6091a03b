"""Command line: `python -m svc_core infer ...` (svc_core.infer_cli) and friends. Errors print one readable line
and exit 2."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

from .errors import SvcError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = fn
        return fn

    return register


@command("infer")
def run_infer(args: argparse.Namespace) -> int:
    from .infer_cli import run

    return run(args)


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


@command("compress-model")
def run_compress_model(args: argparse.Namespace) -> int:
    from .release import run

    return run(args)


@command("mix-models")
def run_mix_models(args: argparse.Namespace) -> int:
    from .model_mix import run

    return run(args)


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
    from .infer_cli import add_arguments as add_infer_arguments

    add_infer_arguments(sub.add_parser("infer", help="convert audio files with a so-vits-svc model"))
    doctor = sub.add_parser("doctor", help="versions, threads, usable encoders/f0 predictors, missing weights")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    _add_preprocess_parser(sub)
    _add_train_parsers(sub)
    _add_tunnel_parser(sub)
    _add_export_onnx_parser(sub)
    from .release import add_arguments as add_release_arguments  # upstream's compress_model.py

    add_release_arguments(sub.add_parser("compress-model", help="a release G_*.pth from a training checkpoint "
                                                                "(no enc_q, no optimizer state; --half for fp16)"))
    from .model_mix import add_arguments as add_mix_arguments  # upstream webUI's static voice mixing

    add_mix_arguments(sub.add_parser("mix-models", help="blend several models of one architecture into one "
                                                        "(upstream's static voice mixing)"))
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
