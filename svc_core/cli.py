"""Command line: `python -m svc_core infer ...` (svc_core.infer_cli) and friends. Errors print one readable line
and exit 2.

Each command lives in its own module, imported only when the command runs (or its arguments are defined): this file
is the table of commands and the error handling around them.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Sequence

from .errors import SvcError

# command -> (module, function(args) -> exit status)
RUNNERS: dict[str, tuple[str, str]] = {
    "infer": (".infer_cli", "run"),
    "doctor": (".doctor", "run"),
    "preprocess": (".preprocess.cli", "run"),
    "train": (".train.cli", "run_train"),  # train, validate-checkpoint and train-index: svc_core.train.cli
    "validate-checkpoint": (".train.cli", "run_validate_checkpoint"),
    "train-index": (".train.cli", "run_train_index"),
    "train-diff": (".diffusion.train.cli", "run"),  # so-vits-svc 4.1 shallow-diffusion model (train_diff.py)
    "train-vocoder": (".vocoders.train.cli", "run"),  # NSF-HiFiGAN mel vocoder training / fine-tuning
    "tunnel": (".tunnel.cli", "run"),  # frpc / ssh -R public link for a running app
    "worker": (".jobs.worker_cli", "run"),  # scale-out: jobs from the Redis queue (Dramatiq), svc_core.jobs
    "export-onnx": (".onnx.cli", "run"),  # synthesizer / encoders -> ONNX with upstream's interface + manifest
    "compress-model": (".release", "run"),  # upstream's compress_model.py
    "mix-models": (".model_mix", "run"),  # upstream webUI's static voice mixing
    "prepare-world": (".worldvoice.cli", "run_prepare"),  # WORLD voices (the starter voices)
    "train-world": (".worldvoice.cli", "run_train"),
    "cover": (".cover_cli", "run"),  # song covers: separate -> key -> convert -> remix -> export (svc_core.cover)
    "separate": (".cover_cli", "run_separate"),
    "latent-map": (".latent_cli", "run"),  # 2-D map of content embeddings (svc_core.latent)
    "live": (".live_cli", "run"),  # real-time voice changer on local sound devices (sounddevice / PortAudio)
    "api": (".api.cli", "run_api"),  # the REST API alone (uvicorn), or --print-schema
    "tokens": (".api.cli", "run_tokens"),  # API tokens: create / list / revoke
    "jobs": (".jobs_cli", "run"),  # a server's jobs: list / show / cancel / download (svc_core.client)
}
# commands whose module defines its arguments with add_arguments(parser): command -> (module, one-line help)
ARGUMENTS: dict[str, tuple[str, str]] = {
    "infer": (".infer_cli", "convert audio files with a so-vits-svc model"),
    "doctor": (".doctor", "versions, threads, usable encoders/f0 predictors, missing weights"),
    "preprocess": (".preprocess.cli", "prepare a training dataset from a folder of audio"),
    "tunnel": (".tunnel.cli", "open a supervised public tunnel (frp or ssh) to the web demo"),
    "jobs": (".jobs_cli", "your jobs on a running server (REST API): list, show, cancel, download results"),
    "worker": (".jobs.worker_cli", "run conversion and cover jobs from the Redis queue (Dramatiq): scale-out "
                                   "workers beside an API server started with --jobs redis://..."),
    "compress-model": (".release", "a release G_*.pth from a training checkpoint (no enc_q, no optimizer state; "
                                   "-hf for fp16)"),
    "mix-models": (".model_mix", "blend several models of one architecture into one (upstream's static voice "
                                 "mixing)"),
    "latent-map": (".latent_cli", "draw a voice's content embeddings in 2-D (UMAP/PCA): training clips, an input, "
                                  "its conversion, cluster centres"),
    "live": (".live_cli", "real-time voice changer: microphone -> voice -> speaker (sounddevice), with a "
                          "latency / RTF status line; --list-devices"),
}
# modules that add their own sub-parsers (several commands, or their own help): (module, function(subparsers))
SUBPARSERS = [(".train.cli", "add_parsers"), (".diffusion.train.cli", "add_parsers"), (".onnx.cli", "add_parser"),
              (".worldvoice.cli", "add_parsers"), (".vocoders.train.cli", "add_parsers"), (".cover_cli", "add_parsers"),
              (".api.cli", "add_parsers")]


def _function(module: str, name: str):
    return getattr(importlib.import_module(module, __package__), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m svc_core", description="so-vits-svc 4.x voice conversion")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in ARGUMENTS.items():
        _function(module, "add_arguments")(sub.add_parser(name, help=help_text))
    for module, function in SUBPARSERS:
        _function(module, function)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        return _function(*RUNNERS[args.command])(args)
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
