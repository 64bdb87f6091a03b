"""`python -m svc_core infer`: one file to one file, or several files / folders into an output folder.

Upstream's `inference_main.py` flags work too (`-n`, `-cm`, `-cr`, `-ns`, `-f0p`, `-lg`, `-wf`, ...; `-t` and `-s`
take lists as there), so a command people already use runs as it is, shallow diffusion and the enhancer included
(svc_core.diffusion.cli); spkmix.py's schedule (-usm) is refused with a message. The model is loaded once; in a
batch a file that cannot be read is reported and skipped, and the command exits 2 at the end if any file failed. Every output name is checked before anything loads, so a slip in
`-o` can neither overwrite an input nor stop a batch half-way. With `--server URL` the same batch runs as jobs on a
server (svc_core.infer_remote).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .audio import AUDIO_SUFFIXES, check_output_path
from . import families
from .diffusion import cli as diffusion_cli
from .errors import AudioError, ModelError, OptionError
from .options import ConvertOptions
from .paths import require_file, safe_file_name
from .precision import ONNX_PRECISIONS, PRECISIONS
from .threads import parse_threads, use_threads

BATCH_FORMATS = ("wav", "flac")
DEFAULT_OUTPUT = "results/"  # upstream's output folder, used when -o is not given
UPSTREAM_INPUT_DIR = "raw"  # where upstream looks for -n names
# Upstream flags of features this engine does not run: (option strings, takes a value, what it is).
NOT_SUPPORTED = [
    (("-usm", "--use_spk_mix"), False, "the spkmix.py speaker-mix schedule (use a speaker mix in the Python API)"),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_voice_arguments(p)
    p.add_argument("-i", "--input", "-n", "--clean_names", dest="input", required=True, nargs="+",
                   help="audio files or folders to convert (any rate, mono or stereo); as upstream, a name not found "
                        "is also looked for in raw/ (with .wav added when it has no extension)")
    p.add_argument("-o", "--output", default=None, help="output file (.wav/.flac), written at the model rate; or a "
                   "folder (existing, or ending in /; always with several inputs or speakers): "
                   f"NAME_SPEAKER_TRANSPOSE.wav inside (default {DEFAULT_OUTPUT}, as upstream)")
    p.add_argument("--format", "-wf", "--wav_format", dest="format", choices=BATCH_FORMATS, default="wav",
                   help="file type of the outputs written into a folder")
    p.add_argument("-s", "--speaker", "--spk_list", dest="speaker", default=None, nargs="+",
                   help="speaker name from config.json or its numeric id (optional for a single-speaker model); "
                        "several: each input is converted for each")
    p.add_argument("-t", "--transpose", "--trans", dest="transpose", type=float, default=[0.0], nargs="+",
                   help="pitch shift in semitones (default 0); several: one per -i item, in order (missing ones "
                        "take the first, as upstream)")
    add_conversion_arguments(p)
    from .infer_remote import add_arguments as add_server_arguments

    add_server_arguments(p)  # --server, --token, --parallel


def add_voice_arguments(p: argparse.ArgumentParser) -> None:
    """-m/--model and -c/--config (also used by `cover`)."""
    p.add_argument("-m", "--model", default=None,
                   help="voice model: a so-vits-svc G_*.pth, an RVC / Applio <name>.pth (v1/v2, read from the file), "
                        "or an .onnx export (runs on ONNX Runtime); svc_core.families says which")
    p.add_argument("-c", "--config", default=None, help="the model's config.json (so-vits G_*.pth; optional for .onnx "
                   "exports, where an upstream <name>_SoVits.onnx uses the one beside it; RVC files carry theirs)")


def add_conversion_arguments(p: argparse.ArgumentParser) -> None:
    """The conversion flags after the input/output/speaker/transpose ones: f0, encoder, cluster, noise, slicing,
    loudness, RVC, threads, precisions, diffusion (also used by `cover`; read back by `_load` and
    `conversion_options`)."""
    p.add_argument("--f0", "-f0p", "--f0_predictor", dest="f0", default="auto",
                   help="f0 predictor: pm, dio, harvest, crepe, crepe-tiny, fcpe, rmvpe, or auto (rmvpe when rmvpe.pt "
                        "is available, else fcpe)")
    p.add_argument("--encoder", default=None, help="content encoder weights (e.g. checkpoint_best_legacy_500.pt), "
                   "or an encoder exported with `export-onnx --encoder` (.onnx, also int8)")
    p.add_argument("--encoder-name", default=None, help="override the encoder named in config.json")
    p.add_argument("--rmvpe", default=None, help="rmvpe.pt (default: ./pretrain or $SVC_PRETRAIN_DIR)")
    p.add_argument("--cluster", "-cm", "--cluster_model_path", "--index", dest="cluster", default=None,
                   help="k-means (kmeans_10000.pt) or index (feature_and_index.pkl, RVC's added_IVF*.index); the "
                        "kind is read from the file. RVC voices: found beside the model when not given ('none': "
                        "no index)")
    p.add_argument("-fr", "--feature_retrieval", action="store_true",
                   help="accepted for upstream commands; the cluster file's kind is read from the file itself")
    p.add_argument("--cluster-ratio", "-cr", "--cluster_infer_ratio", "--index-rate", dest="cluster_ratio",
                   type=float, default=None, help="0..1 share of cluster/retrieved features (default 0; RVC voices "
                   "with an index: 0.75, RVC's index_rate)")
    p.add_argument("--noise-scale", "-ns", "--noice_scale", dest="noise_scale", type=float, default=0.4)
    p.add_argument("--slice-db", "-sd", "--slice_db", dest="slice_db", type=float, default=-40.0,
                   help="silence threshold for slicing, dBFS")
    p.add_argument("--pad-seconds", "-p", "--pad_seconds", dest="pad_seconds", type=float, default=0.5)
    p.add_argument("--clip-seconds", "-cl", "--clip", dest="clip_seconds", type=float, default=0.0,
                   help="force-split slices into pieces (0 = off)")
    p.add_argument("--crossfade-seconds", "-lg", "--linear_gradient", dest="crossfade_seconds", type=float,
                   default=0.0)
    p.add_argument("--crossfade-ratio", "-lgr", "--linear_gradient_retain", dest="crossfade_ratio", type=float,
                   default=0.75)
    p.add_argument("--loudness-mix", "-lea", "--loudness_envelope_adjustment", "--rms-mix-rate", dest="loudness_mix",
                   type=float, default=None, help="1 = model envelope, 0 = input envelope (default 1; RVC voices: "
                   "0.25, RVC's rms_mix_rate)")
    p.add_argument("--protect", type=float, default=None, help="RVC voices: 0..0.5, unvoiced frames keep this "
                   "share of the retrieved content and the rest of the original (0.5 = off; default 0.33)")
    p.add_argument("--filter-radius", type=int, default=None, help="RVC voices: median-filter harvest f0 when >= 3 "
                   "(default 3)")
    p.add_argument("--resample-sr", type=int, default=None, help="RVC voices: write the output at this rate "
                   "(16000-96000 Hz; default: the model's rate)")
    p.add_argument("--f0-threshold", "-ft", "--f0_filter_threshold", dest="f0_threshold", type=float, default=None,
                   help="voicing confidence threshold of crepe/rmvpe/fcpe (default: 0.05, fcpe 0.4)")
    p.add_argument("--auto-f0", "-a", "--auto_predict_f0", dest="auto_f0", action="store_true",
                   help="predict f0 with the model (speech; ignores -t)")
    p.add_argument("--device", "-d", dest="device", default="cpu")
    p.add_argument("--threads", default=None, type=parse_threads_option,
                   help="CPU threads: auto (default, or $SVC_THREADS: the CPUs other processes leave free, measured "
                        "before the run) or a number to force")
    p.add_argument("--vocoder-precision", choices=PRECISIONS + ONNX_PRECISIONS[1:], default="fp32",
                   help="torch backend: bf16 (CPUs with AVX512-BF16/AMX, or CUDA) or fp16 (CUDA) runs the vocoder "
                        "~2x faster, not bit-exact (max abs 3e-3 on a trained voice); ONNX backend: int8 (an export "
                        "made with --int8-vocoder), 2.3-2.8x faster, not bit-exact (default fp32)")
    p.add_argument("--encoder-precision", choices=PRECISIONS, default="fp32",
                   help="a content encoder running in torch in bf16 (CPUs with AVX512-BF16/AMX, or CUDA) or fp16 "
                        "(CUDA): ~2x faster encoder, features within ~2 %% of float32 (default fp32)")
    diffusion_cli.add_arguments(p)
    for flags, takes_value, _ in NOT_SUPPORTED:
        p.add_argument(*flags, dest="unsupported_" + flags[1].lstrip("-"), default=None, help=argparse.SUPPRESS,
                       **({} if takes_value else {"action": "store_const", "const": True}))


def parse_threads_option(value: str) -> str:
    """--threads as given ('auto' or a count), checked here so a typo stops the run before anything loads."""
    try:
        parse_threads(value)
    except OptionError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return value


def refuse_unsupported(args: argparse.Namespace) -> None:
    for flags, _, what in NOT_SUPPORTED:
        if getattr(args, "unsupported_" + flags[1].lstrip("-")) is not None:
            raise OptionError(f"{flags[0]} ({flags[1]}): {what} is not part of this engine yet; leave the option out "
                              "(the so-vits output with the NSF-HiFiGAN vocoder is what runs).")


def _resolve_input(item: str) -> Path:
    """An -i/-n value as a path; as upstream, a name not found here is looked for in raw/ (".wav" added when the
    name has no extension)."""
    path = Path(item)
    if not path.exists():
        guess = Path(UPSTREAM_INPUT_DIR) / (item if "." in path.name else f"{item}.wav")
        if guess.exists():
            return guess
    return path


def expand_inputs(items: list[str]) -> list[list[Path]]:
    """-i values -> their audio files, per value: a file as given, a folder as its audio files (sorted, not
    recursive)."""
    groups: list[list[Path]] = []
    for item in items:
        path = _resolve_input(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise AudioError(f"The folder '{item}' holds no audio files "
                                 f"({', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES)}).")
            groups.append(found)
        else:
            groups.append([Path(require_file(path, "Audio file", AudioError))])
    return groups


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path
    speaker: str | int  # as given (name or id)
    transpose: float  # semitones


def plan_jobs(args: argparse.Namespace, speakers: list[str | int], names: list[str]) -> list[Job]:
    """One job per input file, speaker and its transpose; all outputs checked. A batch (several inputs or speakers,
    a folder, no -o, or -o an existing folder or ending in "/") writes NAME_SPEAKER_TRANSPOSE.FORMAT into the
    output folder."""
    groups = expand_inputs(args.input)
    if len(args.transpose) > len(args.input):
        raise OptionError(f"{len(args.transpose)} transposes (-t) for {len(args.input)} inputs: give one, or one per "
                          "input.")
    transposes = args.transpose + [args.transpose[0]] * (len(args.input) - len(args.transpose))
    output = DEFAULT_OUTPUT if args.output is None else args.output
    batch = len(args.input) > 1 or len(groups[0]) > 1 or _resolve_input(args.input[0]).is_dir() \
        or len(speakers) > 1 or Path(output).is_dir() or output.endswith(("/", os.sep))
    if not batch:
        return [Job(groups[0][0], check_output_path(output, groups[0][0]), speakers[0], transposes[0])]
    folder = Path(output)
    if folder.exists() and not folder.is_dir() or folder.suffix.lower() in AUDIO_SUFFIXES:
        raise OptionError(f"With several inputs, speakers or a folder, -o is the output folder, not a file "
                          f"('{output}').")
    jobs, taken = [], {}
    for files, transpose in zip(groups, transposes):
        for src in files:
            for speaker, name in zip(speakers, names):
                dst = folder / f"{safe_file_name(src.stem)}_{safe_file_name(name)}_{transpose:+g}.{args.format}"
                if dst in taken:
                    raise OptionError(f"'{taken[dst].name}' and '{src.name}' would both be written to '{dst.name}'; "
                                      "convert them in separate runs or rename one.")
                taken[dst] = src
                jobs.append(Job(src, check_output_path(dst, src), speaker, transpose))
    return jobs


def _load(args: argparse.Namespace):
    encoder, encoder_path = args.encoder_name, args.encoder
    if encoder_path and encoder_path.lower().endswith(".onnx"):
        from .onnx import OnnxEncoder

        encoder, encoder_path = OnnxEncoder(encoder_path, threads=args.threads), None
    f0_weights = {"rmvpe": args.rmvpe} if args.rmvpe else None
    diff_model, diff_config = diffusion_cli.model_files(args)
    if args.model is None:
        args.cluster = _index_for(args, None)
    extra = dict(diffusion_model_path=diff_model, diffusion_config_path=diff_config, vocoder_path=args.vocoder)
    if args.only_diffusion:
        from .pipeline import Svc

        return Svc(None, None, encoder_path=encoder_path, cluster_path=args.cluster, device=args.device,
                   encoder=encoder, f0_weights=f0_weights, **extra)
    if not args.model:
        raise OptionError("-m/--model is needed (a G_*.pth, an RVC .pth or an .onnx), unless -od/--only-diffusion renders with the "
                          "diffusion model alone.")
    require_file(args.model, "Model file", ModelError)
    kind = families.identify(args.model, args.config)
    args.cluster = _index_for(args, kind)
    if kind.name == "so-vits-onnx":
        from .onnx import OnnxSvc

        return OnnxSvc(args.model, args.config, encoder_path=encoder_path, cluster_path=args.cluster,
                       device="auto" if args.device == "cpu" else args.device, encoder=encoder,
                       f0_weights=f0_weights, threads=args.threads, **extra)
    if kind.needs_config and not args.config:
        raise OptionError(f"-c/--config is needed with a {kind.label} model (RVC files and .onnx exports carry "
                          "their settings).")
    from .pipeline import Svc

    return Svc(args.model, args.config, encoder_path=encoder_path, cluster_path=args.cluster, device=args.device,
               encoder=encoder, f0_weights=f0_weights, **extra)


def _index_for(args: argparse.Namespace, kind) -> str | None:
    """-cm/--index as given; for an RVC voice without one, its index found as RVC WebUI pairs them (beside the model
    or in logs/<name>/); "none" uses no index."""
    if args.cluster is not None and args.cluster.lower() == "none":
        return None
    if args.cluster is not None or kind is None or not kind.is_rvc:
        return args.cluster
    from .rvc.index_files import find_index

    found = find_index(args.model)
    if found is not None:
        print(f"index: {found} (found beside the model; --index none to convert without it)", file=sys.stderr)
    return None if found is None else str(found)


def _speakers(args: argparse.Namespace, config) -> list[str | int]:
    """-s values as names or ids, each checked (a wrong one stops the run before any file, listing the valid ones);
    none: the only speaker of a single-speaker model."""
    if args.speaker is None:
        return [config.speaker_name(config.only_speaker("-s NAME (or its id)"))]
    speakers: list[str | int] = []
    for given in args.speaker:
        speaker = int(given) if given.isdigit() and given not in config.spk else given
        config.speaker_id(speaker)
        speakers.append(speaker)
    return speakers


def run(args: argparse.Namespace) -> int:
    """Convert every planned job; torch's thread count is this run's choice (restored afterwards, for callers of
    `main` in-process). With --server every conversion is a job on that server instead (svc_core.infer_remote)."""
    if getattr(args, "server", None):
        from .infer_remote import run_remote

        return run_remote(args)
    previous = torch.get_num_threads()
    try:
        return _run(args)
    finally:
        torch.set_num_threads(previous)


def _run(args: argparse.Namespace) -> int:
    from .f0 import resolve_predictor

    refuse_unsupported(args)
    args.thread_choice = use_threads(args.threads)  # torch's count now; ONNX Runtime sessions get the same below
    args.threads = args.thread_choice.count
    f0_name = resolve_predictor(args.f0, args.rmvpe)
    given = args.speaker or ["speaker"]
    plan_jobs(args, given, given)  # inputs and outputs checked before anything loads
    svc = _load(args)
    speakers = _speakers(args, svc.config)
    jobs = plan_jobs(args, speakers, [svc.config.speaker_name(svc.config.speaker_id(s)) for s in speakers])
    failed: list[str] = []
    unreadable: set[Path] = set()
    reported = False
    start = time.perf_counter()
    for number, job in enumerate(jobs, 1):
        if len(jobs) > 1:
            print(f"[{number}/{len(jobs)}] {job.src} (speaker {job.speaker}, transpose {job.transpose:+g})",
                  file=sys.stderr)
        if job.src in unreadable:  # already reported for another speaker
            failed.append(job.src.name)
            continue
        try:
            result = svc.convert_file(  # block by block: memory does not grow with the input's length
                job.src, job.dst, job.speaker, **conversion_options(args, svc, job.transpose, f0_name),
                cache=len(speakers) > 1,  # the same input again for another speaker reuses its f0 and units
                progress=lambda frac, msg: print(f"[{frac:6.1%}] {msg}", file=sys.stderr),
            )
        except AudioError as err:
            if len(jobs) == 1:
                raise
            print(f"error: {job.src.name}: {err} (skipped)", file=sys.stderr)
            failed.append(job.src.name)
            unreadable.add(job.src)
            continue
        if not reported:  # after the first conversion: the encoder and sessions are loaded by then
            _print_engines(args, svc, f0_name)
            reported = True
        if len(jobs) == 1:
            print(svc.last_times.table())
        print(f"wrote {job.dst} ({result.seconds:.2f} s at {result.sample_rate} Hz; real-time factor "
              f"{svc.last_times.rtf:.3f})")
    if len(jobs) > 1:
        print(f"converted {len(jobs) - len(failed)} of {len(jobs)} in {time.perf_counter() - start:.1f} s")
    if failed:
        print(f"error: {len(failed)} of {len(jobs)} conversions failed: {', '.join(sorted(set(failed)))}",
              file=sys.stderr)
        return 2
    return 0


# CLI options that apply to one model family only; passed on only when given, so the voice's own defaults hold
FAMILY_OPTIONS = ("cluster_ratio", "loudness_mix", "protect", "filter_radius", "resample_sr")


def conversion_options(args: argparse.Namespace, svc, transpose: float, f0_name: str) -> dict:
    """Svc.convert_file keywords from the command line: options a voice's family does not use are left out unless
    given (then svc_core.families.check_options names them), as are the f0 options of an RVC model without pitch."""
    kind = svc.family
    opts: dict = dict(transpose=transpose, f0_predictor=f0_name, f0_threshold=args.f0_threshold)
    if not getattr(svc.model, "has_f0", True):
        opts = {"transpose": transpose} if transpose else {}
    opts.update({name: getattr(args, name) for name in FAMILY_OPTIONS if getattr(args, name) is not None})
    sovits = dict(noise_scale=args.noise_scale, slice_db=args.slice_db, pad_seconds=args.pad_seconds,
                  clip_seconds=args.clip_seconds, crossfade_seconds=args.crossfade_seconds,
                  crossfade_ratio=args.crossfade_ratio, auto_predict_f0=args.auto_f0,
                  vocoder_precision=args.vocoder_precision, **diffusion_cli.options(args))
    defaults = ConvertOptions()
    opts.update({k: v for k, v in sovits.items() if k in kind.controls or v != getattr(defaults, k)})
    opts["encoder_precision"] = args.encoder_precision
    return opts


def _print_engines(args: argparse.Namespace, svc, f0_name: str) -> None:
    engines = [getattr(x, "session_info", None) for x in (svc, svc.encoder)]
    print(f"f0 predictor: {f0_name}; encoder: {svc.encoder.name}"
          + (f" ({engines[1].describe()})" if engines[1] else "")
          + (f" {args.encoder_precision}" if args.encoder_precision != "fp32" else "")
          + f"; CPU threads: {args.thread_choice.describe()}; "
          + f"synthesizer: {engines[0].describe() if engines[0] else 'torch eager'}"
          + (f", vocoder {args.vocoder_precision}" if args.vocoder_precision != "fp32" else ""))
    if svc.diffusion is not None and (args.shallow_diffusion or args.only_diffusion):
        method = args.diffusion_method or svc.diffusion.config.infer_method
        speedup = args.diffusion_speedup or svc.diffusion.config.infer_speedup
        depth = "from noise" if args.only_diffusion else f"k_step {args.k_step}"
        print(f"diffusion: {os.path.basename(svc.diffusion.model_path)} ({depth}, {method}, speedup {speedup}); "
              f"mel vocoder: {svc.diffusion.vocoder_path}")
    for name, sec in svc.load_times.seconds.items():
        print(f"{name:<14}{sec:>10.3f}  (one-off)")
