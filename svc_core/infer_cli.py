"""`python -m svc_core infer`: one file to one file, or several files / folders into an output folder.

The model is loaded once; in a batch a file that cannot be read is reported and skipped, and the command exits 2
at the end if any file failed. Every output name is checked before anything loads, so a slip in `-o` can neither
overwrite an input nor stop a batch half-way.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from .audio import AUDIO_SUFFIXES, check_output_path
from .errors import AudioError, OptionError
from .paths import require_file, safe_file_name
from .precision import ONNX_PRECISIONS, PRECISIONS

BATCH_FORMATS = ("wav", "flac")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", required=True,
                   help="generator checkpoint G_*.pth, or an export-onnx .onnx file (runs on ONNX Runtime)")
    p.add_argument("-c", "--config", default=None, help="the model's config.json (optional for our .onnx exports; "
                   "an upstream <name>_SoVits.onnx uses the one beside it when not given)")
    p.add_argument("-i", "--input", required=True, nargs="+",
                   help="audio file to convert (any rate, mono or stereo); several files or folders convert each "
                        "into the -o folder")
    p.add_argument("-o", "--output", required=True, help="output file (.wav/.flac), written at the model rate; or a "
                   "folder (existing, or ending in /; always with several inputs): NAME_SPEAKER_TRANSPOSE.wav inside")
    p.add_argument("--format", choices=BATCH_FORMATS, default="wav", help="file type of a batch's outputs")
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


def expand_inputs(items: list[str]) -> list[Path]:
    """-i values -> audio files: files as given, folders as their audio files (sorted, not recursive)."""
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise AudioError(f"The folder '{item}' holds no audio files "
                                 f"({', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES)}).")
            files += found
        else:
            files.append(Path(require_file(item, "Audio file", AudioError)))
    return files


def plan_outputs(args: argparse.Namespace, speaker_name: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs, all checked. A batch (several inputs, a folder, or -o an existing folder or ending in
    "/") writes NAME_SPEAKER_TRANSPOSE.FORMAT into the -o folder."""
    files = expand_inputs(args.input)
    batch = len(args.input) > 1 or Path(args.input[0]).is_dir() or Path(args.output).is_dir() \
        or args.output.endswith(("/", os.sep))
    if not batch:
        return [(files[0], check_output_path(args.output, files[0]))]
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir() or folder.suffix.lower() in AUDIO_SUFFIXES:
        raise OptionError(f"With several inputs or a folder, -o is the output folder, not a file ('{args.output}').")
    pairs, taken = [], {}
    for src in files:
        dst = folder / f"{safe_file_name(src.stem)}_{safe_file_name(speaker_name)}_{args.transpose:+g}.{args.format}"
        if dst in taken:
            raise OptionError(f"'{taken[dst].name}' and '{src.name}' would both be written to '{dst.name}'; "
                              "convert them in separate runs or rename one.")
        taken[dst] = src
        pairs.append((src, check_output_path(dst, src)))
    return pairs


def _load(args: argparse.Namespace):
    encoder, encoder_path = args.encoder_name, args.encoder
    if encoder_path and encoder_path.lower().endswith(".onnx"):
        from .onnx import OnnxEncoder

        encoder, encoder_path = OnnxEncoder(encoder_path, threads=args.threads or None), None
    f0_weights = {"rmvpe": args.rmvpe} if args.rmvpe else None
    if args.model.lower().endswith(".onnx"):
        from .onnx import OnnxSvc

        return OnnxSvc(args.model, args.config, encoder_path=encoder_path, cluster_path=args.cluster,
                       device="auto" if args.device == "cpu" else args.device, encoder=encoder,
                       f0_weights=f0_weights, threads=args.threads or None)
    if not args.config:
        raise OptionError("-c/--config is needed with a .pth model (only .onnx exports carry their config).")
    from .pipeline import Svc

    return Svc(args.model, args.config, encoder_path=encoder_path, cluster_path=args.cluster, device=args.device,
               encoder=encoder, f0_weights=f0_weights)


def _speaker(args: argparse.Namespace, config) -> str | int:
    if args.speaker is None:
        return config.only_speaker("-s NAME (or its id)")
    speaker = int(args.speaker) if args.speaker.isdigit() and args.speaker not in config.spk else args.speaker
    config.speaker_id(speaker)  # a wrong name stops here, before any file, with the valid ones listed
    return speaker


def run(args: argparse.Namespace) -> int:
    from .f0 import resolve_predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    f0_name = resolve_predictor(args.f0, args.rmvpe)
    name_hint = args.speaker if args.speaker is not None else "speaker"
    plan_outputs(args, name_hint)  # inputs and outputs checked before anything loads
    svc = _load(args)
    speaker = _speaker(args, svc.config)
    pairs = plan_outputs(args, svc.config.speaker_name(svc.config.speaker_id(speaker)))
    failed: list[str] = []
    reported = False
    start = time.perf_counter()
    for number, (src, dst) in enumerate(pairs, 1):
        if len(pairs) > 1:
            print(f"[{number}/{len(pairs)}] {src}", file=sys.stderr)
        try:
            result = svc.convert_file(  # block by block: memory does not grow with the input's length
                src, dst, speaker, transpose=args.transpose, f0_predictor=f0_name, cluster_ratio=args.cluster_ratio,
                noise_scale=args.noise_scale, slice_db=args.slice_db, pad_seconds=args.pad_seconds,
                clip_seconds=args.clip_seconds, crossfade_seconds=args.crossfade_seconds,
                crossfade_ratio=args.crossfade_ratio, loudness_mix=args.loudness_mix, f0_threshold=args.f0_threshold,
                auto_predict_f0=args.auto_f0, vocoder_precision=args.vocoder_precision,
                encoder_precision=args.encoder_precision,
                cache=False,  # each input is converted once: cached features would never be read back
                progress=lambda frac, msg: print(f"[{frac:6.1%}] {msg}", file=sys.stderr),
            )
        except AudioError as err:
            if len(pairs) == 1:
                raise
            print(f"error: {src.name}: {err} (skipped)", file=sys.stderr)
            failed.append(src.name)
            continue
        if not reported:  # after the first conversion: the encoder and sessions are loaded by then
            _print_engines(args, svc, f0_name)
            reported = True
        if len(pairs) == 1:
            print(svc.last_times.table())
        print(f"wrote {dst} ({result.seconds:.2f} s at {svc.sample_rate} Hz; real-time factor "
              f"{svc.last_times.rtf:.3f})")
    if len(pairs) > 1:
        print(f"converted {len(pairs) - len(failed)} of {len(pairs)} files in {time.perf_counter() - start:.1f} s")
    if failed:
        print(f"error: {len(failed)} of {len(pairs)} files could not be converted: {', '.join(failed)}",
              file=sys.stderr)
        return 2
    return 0


def _print_engines(args: argparse.Namespace, svc, f0_name: str) -> None:
    engines = [getattr(x, "session_info", None) for x in (svc, svc.encoder)]
    print(f"f0 predictor: {f0_name}; encoder: {svc.encoder.name}"
          + (f" ({engines[1].describe()})" if engines[1] else "")
          + (f" {args.encoder_precision}" if args.encoder_precision != "fp32" else "")
          + f"; torch threads: {torch.get_num_threads()}; "
          + f"synthesizer: {engines[0].describe() if engines[0] else 'torch eager'}"
          + (f", vocoder {args.vocoder_precision}" if args.vocoder_precision != "fp32" else ""))
    for name, sec in svc.load_times.seconds.items():
        print(f"{name:<14}{sec:>10.3f}  (one-off)")
