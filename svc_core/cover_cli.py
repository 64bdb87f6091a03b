"""`python -m svc_core cover song.mp3 -m VOICE [-c CONFIG] -o outdir/ ...` and `python -m svc_core separate song -o
dir --separator NAME [--model FILE]`.

`cover` takes every conversion flag of `infer` (svc_core.infer_cli.add_conversion_arguments: f0 predictor,
encoder, cluster / index, noise, slicing, RVC options, threads, precisions, diffusion) and loads the voice the same
way (`infer_cli._load`); the transpose is the cover's own (`--transpose N|auto`)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import infer_cli
from .cover.request import DEFAULT_TARGET_LUFS, EXPORT_FORMATS
from .errors import OptionError
from .separation.registry import DEFAULT_SEPARATOR, list_separators


def _formats(value: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower().lstrip(".") for f in value.split(",") if f.strip())
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"formats are a comma-separated list of {', '.join(EXPORT_FORMATS)}; got "
                                         f"'{value}'")
    return formats


def _separator_arguments(p: argparse.ArgumentParser, model_flags: tuple[str, ...]) -> None:
    p.add_argument("--separator", default=DEFAULT_SEPARATOR, choices=list_separators(),
                   help=f"separation backend (default {DEFAULT_SEPARATOR}); community families (mdx, demucs, "
                        "roformer, vr) need a model file (docs/covers.md)")
    p.add_argument(*model_flags, dest="separator_model", default=None,
                   help="the separator's model file (community families)")
    p.add_argument("--format", dest="formats", type=_formats, default=("wav",),
                   help=f"output formats, comma-separated: {', '.join(EXPORT_FORMATS)} (default wav)")


def add_cover_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("song", help="the song: audio file (wav, flac, mp3, ogg, ...; mono or stereo, up to 10 min) or a "
                                "video file (its audio track, needs ffmpeg)")
    infer_cli.add_voice_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output folder: SONG_{original_vocals,converted_vocals,"
                   "accompaniment,mix}.FORMAT, and a stems cache (.stems-cache/) reused by later covers of the song")
    p.add_argument("-s", "--speaker", default=None, help="speaker name or id (optional for a single-speaker voice)")
    _separator_arguments(p, ("--separator-model",))
    p.add_argument("--lead-separator", choices=list_separators(), default=None,
                   help="a second pass over the separated vocals that keeps the lead (e.g. mdx with a karaoke model); "
                        "the backing vocals stay, unconverted, in the accompaniment")
    p.add_argument("--lead-model", default=None, help="model file of --lead-separator")
    p.add_argument("--dereverb-separator", choices=list_separators(), default=None,
                   help="a pass that removes the vocal's reverb before conversion (e.g. vr with a de-reverb model)")
    p.add_argument("--dereverb-model", default=None, help="model file of --dereverb-separator")
    p.add_argument("-t", "--transpose", default="0",
                   help="semitones for the vocal, or 'auto' (the voice's range against the song's; printed with "
                        "its reasons)")
    p.add_argument("--shift-accompaniment", action="store_true",
                   help="pitch-shift the accompaniment by the same semitones (Rubber Band), so any transpose stays "
                        "in key")
    p.add_argument("--vocal-gain", type=float, default=0.0, help="dB on the converted vocal, after it is matched to "
                   "the original vocal's loudness")
    p.add_argument("--accompaniment-gain", type=float, default=0.0, help="dB on the accompaniment")
    p.add_argument("--reverb", type=float, default=0.0, help="0..1 reverb on the converted vocal (wet share)")
    p.add_argument("--lufs", type=float, default=DEFAULT_TARGET_LUFS,
                   help=f"integrated loudness of the mix, LUFS (default {DEFAULT_TARGET_LUFS:g})")
    p.add_argument("--zip", action="store_true", help="also write SONG_cover.zip with every stem")
    p.add_argument("--no-cache", action="store_true", help="separate again even if the out folder has the stems")
    infer_cli.add_conversion_arguments(p)


def add_separate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("song", help="the song (audio file, or a video file with ffmpeg installed)")
    p.add_argument("-o", "--output", required=True, help="output folder: SONG_vocals.FORMAT, "
                                                         "SONG_accompaniment.FORMAT (and any other stems)")
    _separator_arguments(p, ("--model", "--separator-model"))
    p.add_argument("--threads", default=None, type=infer_cli.parse_threads_option,
                   help="CPU threads: auto (default) or a number")


def add_parsers(sub) -> None:
    add_cover_arguments(sub.add_parser("cover", help="a song cover: separate the vocals, convert them with a voice, "
                                                     "remix at a target loudness, export stems"))
    add_separate_arguments(sub.add_parser("separate", help="split a song into vocals and accompaniment"))


def _printer():
    """progress(stage, fraction, message) printing to stderr."""
    last = {"stage": "", "at": 0.0}

    def progress(stage: str, fraction: float, message: str) -> None:
        now = time.perf_counter()
        if stage == last["stage"] and fraction < 1.0 and now - last["at"] < 0.5 and "chunk" not in message:
            return  # at most two lines a second per stage (conversion reports every piece)
        last.update(stage=stage, at=now)
        print(f"[{stage:<8} {fraction:6.1%}] {message}", file=sys.stderr)

    return progress


def run(args: argparse.Namespace) -> int:
    import torch

    previous = torch.get_num_threads()
    try:
        return _run_cover(args)
    finally:
        torch.set_num_threads(previous)


def _run_cover(args: argparse.Namespace) -> int:
    from .cover import CoverRequest, run_cover
    from .f0 import resolve_predictor
    from .threads import use_threads

    infer_cli.refuse_unsupported(args)
    if args.only_diffusion:
        raise OptionError("A cover converts with a voice model (-m); only-diffusion (-od) is not offered here.")
    request = CoverRequest(  # every cover setting checked before anything loads
        args.song, args.model, args.config, separator=args.separator, separator_model=args.separator_model,
        lead_separator=args.lead_separator, lead_model=args.lead_model,
        dereverb_separator=args.dereverb_separator, dereverb_model=args.dereverb_model, transpose=args.transpose,
        shift_accompaniment=args.shift_accompaniment, vocal_gain_db=args.vocal_gain,
        accompaniment_gain_db=args.accompaniment_gain, reverb=args.reverb, target_lufs=args.lufs,
        formats=args.formats, zip=args.zip)
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise OptionError(f"-o is the output folder; '{args.output}' is a file.")
    args.thread_choice = use_threads(args.threads)
    args.threads = args.thread_choice.count
    f0_name = resolve_predictor(args.f0, args.rmvpe)
    args.speaker = None if args.speaker is None else [args.speaker]
    voice = infer_cli._load(args)
    request.speaker = infer_cli._speakers(args, voice.config)[0]
    options = infer_cli.conversion_options(args, voice, 0.0, f0_name)
    options.pop("transpose", None)
    request.options = options
    result = run_cover(request, args.output, _printer(), voice=voice, cache=not args.no_cache)
    s = result.suggestion
    if s is not None:
        print(f"key: {s.explanation}")
    print(f"transpose {result.transpose:+g} semitones (vocal), {result.accompaniment_shift:+g} (accompaniment); "
          f"separator: {result.separator}{' (cached stems)' if result.separation_cached else ''}")
    print(f"mix: {result.mix_lufs:.1f} LUFS, peak {result.mix_peak_db:.1f} dBFS, {result.seconds:.1f} s at "
          f"{result.sample_rate} Hz; threads: {args.thread_choice.describe()}")
    print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.stage_seconds.items()))
    for stem, by_format in result.stems.items():
        print(f"wrote {', '.join(str(p) for p in by_format.values())}")
    if result.zip_path is not None:
        print(f"wrote {result.zip_path}")
    return 0


def run_separate(args: argparse.Namespace) -> int:
    import torch

    from .separation.registry import get_separator
    from .song_io import read_song, song_name, write_stem
    from .threads import use_threads

    previous = torch.get_num_threads()
    try:
        choice = use_threads(args.threads)
        separator = get_separator(args.separator, args.separator_model)
        song, sr = read_song(args.song)
        progress = _printer()
        start = time.perf_counter()
        stems = separator.separate(song, sr, lambda done, total: progress("separate", done / total,
                                                                          f"chunk {done}/{total}"))
        seconds = time.perf_counter() - start
        name = song_name(args.song)
        out = Path(args.output)
        tracks = {"vocals": stems.vocals, "accompaniment": stems.accompaniment, **stems.extra}
        for stem, audio in tracks.items():
            for fmt in args.formats:
                print(f"wrote {write_stem(out / f'{name}_{stem}.{fmt}', audio, sr)}")
        print(f"separated {stems.seconds:.1f} s with {stems.separator} in {seconds:.1f} s (real-time factor "
              f"{seconds / stems.seconds:.3f}; threads: {choice.describe()})")
        return 0
    finally:
        torch.set_num_threads(previous)
