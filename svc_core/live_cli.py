"""`python -m svc_core live -m VOICE [-c CONFIG] --input-device X --output-device Y ...`: the real-time voice
changer on local sound devices (sounddevice / PortAudio), and `--list-devices`.

-m is a voice folder (a starter voice: W_*.pth or G_*.pth with config.json and its encoder file) or a model file as
for `infer` (so-vits G_*.pth with -c, RVC .pth, .onnx export). Once a second a status line says the estimated
latency, the conversion time per block, the real-time factor, underruns, dropped blocks and the input level;
--log writes the same (and one line per block) as JSON lines.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from . import infer_cli
from .errors import OptionError
from .live.settings import LiveSettings

DEFAULT_F0 = LiveSettings.f0_predictor  # the engine's default (dio: cheap on a CPU, steady at a block's edge)
WARMUP_BLOCKS = 2  # blocks converted before the stream opens (first calls allocate and are slow)
WARMUP_LEVEL = 0.05  # amplitude of the warm-up noise (above any silence gate), linear


def _silence_db(value: str) -> Optional[float]:
    if value.strip().lower() in ("off", "none"):
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--silence-db is a level in dBFS (e.g. -50) or 'off'; got '{value}'")


def _speaker(value: str) -> str | int:
    return int(value) if value.strip().lstrip("-").isdigit() else value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Real-time voice changer on local sound devices. -m is a voice folder (e.g. voices/starter) or "
                     "a model file as for infer (-c its config.json).")
    infer_cli.add_voice_arguments(p)
    p.add_argument("--list-devices", action="store_true", help="list the audio devices (index, name, host API, "
                   "input/output channels, default rate) and exit")
    p.add_argument("-i", "--input-device", default=None,
                   help="microphone: device index or (part of its) name (default: the system's default input)")
    p.add_argument("-o", "--output-device", default=None,
                   help="speaker / virtual cable: index or (part of its) name (default: the system's default "
                        "output); on the same host API as the input")
    p.add_argument("--host-api", default=None, help="look device names up on this host API only (part of its name: "
                   "ALSA, JACK, WASAPI, ASIO, Core Audio, ...); one card is listed once per host API")
    p.add_argument("--rate", type=int, default=None,
                   help="device sample rate, Hz (default: the input device's default rate)")
    p.add_argument("--device-latency", default="low",
                   help="PortAudio's suggested device latency: low (default), high, or seconds")
    p.add_argument("--headroom", type=float, default=None,
                   help="converted audio held in hand before playback starts, s, against gaps when conversion "
                        "time varies (default 0.03; adds to the latency)")
    p.add_argument("--block", type=float, default=None, help="new audio per conversion step, s (default 0.1): "
                   "smaller is less latency but more work per second")
    p.add_argument("--extra", type=float, default=None,
                   help="left context the encoder and f0 predictor read before each block, s (default 0.5)")
    p.add_argument("--crossfade", type=float, default=None,
                   help=f"crossfade between blocks, s (default {LiveSettings.crossfade_seconds:g})")
    p.add_argument("-t", "--transpose", type=float, default=0.0, help="semitones (default 0)")
    p.add_argument("-s", "--speaker", type=_speaker, default=None,
                   help="speaker name or id (default: the voice's first speaker)")
    p.add_argument("--f0", default=DEFAULT_F0,
                   help=f"f0 predictor: {DEFAULT_F0} (default), fcpe, pm, harvest, crepe, rmvpe, ...")
    p.add_argument("--silence-db", type=_silence_db, default=-50.0,
                   help="blocks quieter than this many dBFS are not converted (silence out); 'off' converts all "
                        "(default -50)")
    p.add_argument("--cluster", default=None, help="k-means / index file of the voice (as for infer)")
    p.add_argument("--cluster-ratio", type=float, default=0.0, help="0..1 share of cluster / retrieved features")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run until "
                   "Ctrl-C)")
    p.add_argument("--log", default=None, help="write a JSON-lines log of the session here (settings, devices, "
                   "one line per block and per second, the summary)")
    p.add_argument("--threads", default=None, type=infer_cli.parse_threads_option,
                   help="CPU threads for the conversion: auto (default) or a number")
    p.add_argument("--quiet", action="store_true", help="no status line (the log still gets everything)")


def load_voice(args: argparse.Namespace):
    """The voice as an Svc / OnnxSvc: a voice folder (starter layout) or a model file as `infer` takes it."""
    if args.model and Path(args.model).is_dir():
        from .starter.evaluation import load_voice as load_folder

        return load_folder(args.model)
    defaults = argparse.ArgumentParser(add_help=False)
    infer_cli.add_conversion_arguments(defaults)
    load_args = defaults.parse_args([])
    load_args.model, load_args.config, load_args.cluster = args.model, args.config, args.cluster
    load_args.threads = args.threads
    return infer_cli._load(load_args)


def _speaker_for(svc, given: str | int | None) -> str | int | None:
    if given is not None:
        return given
    speakers = list(getattr(svc.config, "spk", {}) or {})
    return speakers[0] if speakers else None


def live_settings(args: argparse.Namespace, svc, rate: int):
    """LiveSettings from the flags (the engine checks every range); unset flags keep the engine's defaults."""
    from .f0 import resolve_predictor
    from .live import LiveSettings

    given: dict[str, Any] = {"block_seconds": args.block, "extra_seconds": args.extra,
                             "crossfade_seconds": args.crossfade}
    values = {k: v for k, v in given.items() if v is not None}
    f0 = resolve_predictor(args.f0, getattr(svc, "f0_weights", {}).get("rmvpe"))
    return LiveSettings.from_kwargs(**values, silence_db=args.silence_db, transpose=args.transpose,
                                    speaker=_speaker_for(svc, args.speaker), f0_predictor=f0,
                                    cluster_ratio=args.cluster_ratio, io_rate=rate)


def _warm_up(session) -> None:
    """Convert a little noise so the first real blocks do not pay for allocation, then start afresh."""
    import numpy as np

    noise = np.random.default_rng(0).standard_normal(session.block_samples).astype(np.float32) * WARMUP_LEVEL
    for _ in range(WARMUP_BLOCKS):
        session.process(noise)
    session.reset()


def run(args: argparse.Namespace) -> int:
    from .live import devices

    if args.list_devices:
        print(devices.format_devices(devices.list_devices(), devices.default_indexes()))
        return 0
    if not args.model:
        raise OptionError("-m/--model is needed: a voice folder (e.g. voices/starter) or a model file "
                          "(--list-devices needs none).")
    if args.seconds is not None and args.seconds <= 0:
        raise OptionError(f"--seconds must be > 0; got {args.seconds:g}.")
    if args.log and Path(args.log).is_dir():
        raise OptionError(f"--log is a file to write; '{args.log}' is a folder.")
    headroom = devices.DEFAULT_HEADROOM_SECONDS if args.headroom is None else args.headroom
    plan = devices.plan_devices(args.input_device, args.output_device, args.rate, args.device_latency,
                                headroom_seconds=headroom, hostapi=args.host_api)  # before the model loads: bad devices fail fast
    return _run(args, plan)


def _run(args: argparse.Namespace, plan) -> int:
    import torch

    from .live import LiveSession, devices
    from .live.device_log import DeviceSessionLog
    from .threads import use_threads

    previous = torch.get_num_threads()
    try:
        choice = use_threads(args.threads)
        args.threads = choice.count
        svc = load_voice(args)
        settings = live_settings(args, svc, plan.rate)
        session = LiveSession(svc, settings)
        _warm_up(session)
        log = DeviceSessionLog.open(args.log, settings, plan, svc_name=str(args.model), threads=choice.describe())
        say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        say(f"live: {plan.input.label()} -> {plan.output.label()} at {plan.rate} Hz; block "
            f"{settings.block_seconds:g} s, extra {settings.extra_seconds:g} s, crossfade "
            f"{settings.crossfade_seconds:g} s, algorithmic delay {session.algorithmic_delay_seconds * 1000:.0f} ms; "
            f"speaker {settings.speaker}, f0 {settings.f0_predictor}; {choice.describe()}"
            + ("" if args.seconds else "; Ctrl-C stops"))

        def on_status(status) -> None:
            say(status.line() + log.advice_text(status))
            log.status(status)

        final = None
        try:
            final = devices.run_stream(session, plan, seconds=args.seconds, on_status=on_status,
                                       on_block=log.block)
        finally:
            summary = log.close(final)
        print(json.dumps(summary))  # one line for scripts; the log has the details
        if args.log:
            say(f"log: {args.log}")
        return 0
    finally:
        torch.set_num_threads(previous)
