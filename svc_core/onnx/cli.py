"""`python -m svc_core export-onnx -m G.pth -c config.json -o model.onnx [--speaker-mix auto|on|off]`."""
from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a G_*.pth to ONNX with upstream's input/output names")
    p.add_argument("-m", "--model", required=True, help="generator checkpoint G_*.pth")
    p.add_argument("-c", "--config", required=True, help="the model's config.json")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write (its manifest goes to <o>.json)")
    p.add_argument("--speaker-mix", choices=("auto", "on", "off"), default="auto",
                   help="sid as float32 [frames, n_speakers] mix weights (auto: when the config has 2+ speakers, "
                        "as upstream's exporter) or int64 [1]")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (16 or newer; default 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnx.checker + ONNX Runtime parity check")


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from .export import export_synthesizer, manifest_path

    if args.opset < 16:
        raise OptionError(f"--opset {args.opset} is too old; the graph needs opset 16 or newer.")
    mix = {"auto": None, "on": True, "off": False}[args.speaker_mix]
    manifest = export_synthesizer(args.model, args.config, args.output, speaker_mix=mix, opset=args.opset,
                                  verify=not args.no_verify)
    inputs = ", ".join(f"{n} {v['dtype']} {v['shape']}" for n, v in manifest["inputs"].items())
    print(f"wrote {args.output} (opset {manifest['opset']}, {'speaker-mix' if manifest['speaker_mix'] else 'one speaker id'})")
    print(f"inputs: {inputs}")
    print(f"output: audio float32 {manifest['outputs']['audio']['shape']}")
    if "parity" in manifest:
        print(f"check: onnx.checker passed; ONNX Runtime vs torch max abs difference "
              f"{manifest['parity']['max_abs_diff']:.2e} on {manifest['parity']['frames']} frames")
    print(f"manifest: {manifest_path(args.output)} (checkpoint sha256 {manifest['source_checkpoint']['sha256'][:12]}...)")
    print(json.dumps(manifest["moevoicestudio"]))
    return 0
