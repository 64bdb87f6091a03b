"""One RVC bench row in a fresh process (so peak RSS is this row's):
`python -m bench.rvc_one --backend BACKEND --threads N --f0 pm|rmvpe --seconds 40 --workdir DIR [--file]
[--out FILE.npy] [--size full|small]` -> one JSON line.

The input is bench.models' sung clip (44.1 kHz, in memory) or, with --file, bench.models.clip_file's WAV converted
into another WAV (`Svc.convert_file`, as the CLI does). Backends (BACKENDS): the baseline `rvc-reference` (torch
eager, RVC's procedure: bench.rvc_reference) and svc_core's engine `torch` (`Svc(voice, None, cluster_path=index)`
then slice_inference / convert_file) and its diagnostic variants. Retrieval index_rate 0.75, rms_mix_rate 0.25,
protect 0.33, transpose 0, speaker 0 everywhere. --out: the converted audio (float32, in-memory rows) saved for the
driver's output comparison.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from pathlib import Path

BACKENDS = {
    "rvc-reference": "torch eager, RVC's procedure (weight norm kept, each segment decoded whole incl. its 1 s pads, "
                     "one HuBERT / RMVPE call)",
    "torch": "svc_core torch eager (Svc: weight norm folded, 256-frame decoder chunks, trimmed pads not decoded)",
    "torch-whole": "svc_core torch eager, decoder_chunk_frames=0 (diagnostic: one decoder call, pads skipped)",
    "torch-bf16": "svc_core torch eager, vocoder bf16 (opt-in, outside the 1e-3 parity)",
    "onnx": "svc_core on ONNX Runtime (RvcOnnxVoice: our split export, prior once, decoder in chunks; encoder, f0 "
            "and retrieval as torch)",
    "torch-fast": "svc_core torch eager + bench.rvc_fast (banded blocked prior attention, HuBERT through SDPA) + "
                  "1024-frame decoder chunks (proposal)",
}
FAST_CHUNK_FRAMES = 1024  # torch-fast's decoder chunk: 28 context frames per chunk are 3 % (256-frame chunks: 12 %)
# imported before the clock starts (RVC's pipeline module imports them at start-up; svc_core on first use): no row
# pays for them
WARM_IMPORTS = ("scipy.signal", "librosa", "librosa.feature", "librosa.feature.spectral", "parselmouth", "faiss",
                "soxr")  # librosa.feature.spectral (rms): its import compiles numba code, ~1-30 s
CHUNK_PREFIX = "torch-c"  # "torch-c<N>": the torch engine with decoder_chunk_frames=N (diagnostic)


def describe(backend: str) -> str:
    """The row's label: BACKENDS[backend], or the torch engine with another decoder chunk ("torch-c<N>")."""
    if backend in BACKENDS:
        return BACKENDS[backend]
    if backend.startswith(CHUNK_PREFIX) and backend[len(CHUNK_PREFIX):].isdigit():
        return f"svc_core torch eager, decoder_chunk_frames={int(backend[len(CHUNK_PREFIX):])} (diagnostic)"
    raise SystemExit(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)} or {CHUNK_PREFIX}<frames>")


OPTIONS = {"cluster_ratio": 0.75, "loudness_mix": 0.25, "protect": 0.33, "filter_radius": 3}  # RVC's defaults


def _decoded_frames(decoder) -> tuple[list[int], object]:
    """Count the frames every decoder call decodes (a pre-hook on conv_pre) -> (counts, hook handle)."""
    frames: list[int] = []
    handle = decoder.conv_pre.register_forward_pre_hook(lambda _m, a: frames.append(int(a[0].shape[-1])))
    return frames, handle


def run_reference(paths: dict, f0: str, source) -> tuple:
    """(output float32 [M], StageTimes, load seconds, decoded frames per call) of the RVC-procedure baseline.
    source: (wav, sr)."""
    from svc_core.timing import StageTimes

    from .rvc_reference import ReferenceOptions, RvcReference

    start = time.perf_counter()
    ref = RvcReference(paths["voice"], paths["encoder"], paths["index"], paths["rmvpe"])
    load = time.perf_counter() - start
    frames, hook = _decoded_frames(ref.net.dec)
    times = StageTimes()
    from svc_core.models.attentions import whole_matrix_attention  # RVC's attention (and HuBERT's), not ours

    with whole_matrix_attention():
        out = ref.convert(*source, ReferenceOptions(f0_method=f0, index_rate=OPTIONS["cluster_ratio"],
                                                    rms_mix_rate=OPTIONS["loudness_mix"], protect=OPTIONS["protect"],
                                                    filter_radius=OPTIONS["filter_radius"]), times)
    hook.remove()
    return out, times, load, frames


def onnx_svc_class(threads: int) -> type:
    """An Svc whose RVC ONNX voice runs ONNX Runtime with `threads` intra-op threads (the family table's loader
    takes the physical cores)."""
    from svc_core import Svc
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    class OnnxThreads(Svc):
        def _load_model(self, model_path, config_path, device):
            return RvcOnnxVoice(model_path, device=device, threads=threads)

    return OnnxThreads


def onnx_voice(voice: Path, export: bool = False) -> Path:
    """The voice exported with svc_core.onnx.rvc_export (our split pair + manifest) beside it; export=True makes
    it when missing (bench.rvc does that in a process of its own, so no row's peak RSS holds the export)."""
    from svc_core.onnx.rvc_export import export_rvc
    from svc_core.onnx.split_export import split_paths

    out = voice.with_suffix(".onnx")
    if not (out.is_file() and all(p.is_file() for p in split_paths(out).values())):
        if not export:
            raise SystemExit(f"{out} is missing: `python -m bench.rvc` exports it before the onnx rows")
        export_rvc(voice, out, verify=False)
    return out


def run_engine(backend: str, paths: dict, f0: str, source, dst: str | None, threads: int = 0) -> tuple:
    """(output or None (file rows), StageTimes, load seconds, decoded frames) of svc_core's engine."""
    from svc_core import Svc

    voice, svc_class = paths["voice"], Svc
    if backend == "onnx":
        voice, svc_class = onnx_voice(Path(paths["voice"])), onnx_svc_class(threads)
    start = time.perf_counter()
    svc = svc_class(voice, None, encoder_path=str(paths["encoder"]), cluster_path=str(paths["index"]),
                    f0_weights={"rmvpe": str(paths["rmvpe"])})
    load = time.perf_counter() - start
    options = dict(OPTIONS)
    if backend == "torch-whole":
        options["decoder_chunk_frames"] = 0
    if backend == "torch-bf16":
        options["vocoder_precision"] = "bf16"
    if backend.startswith(CHUNK_PREFIX):
        options["decoder_chunk_frames"] = int(backend[len(CHUNK_PREFIX):])
    if backend == "torch-fast":
        from .rvc_fast import banded_relative_attention, sdpa_attention

        options["decoder_chunk_frames"] = FAST_CHUNK_FRAMES
        banded_relative_attention(svc.model.net.enc_p)
        sdpa_attention(svc.encoder.model)
    frames, hook = ([], None) if backend == "onnx" else _decoded_frames(svc.model.dec)
    if dst is not None:
        svc.convert_file(source, dst, 0, f0_predictor=f0, cache=False, **options)
        out = None
    else:
        out = svc.slice_inference(*source, 0, f0_predictor=f0, **options)
    if hook is not None:
        hook.remove()
    return out, svc.last_times, load, frames


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rvc_one")
    p.add_argument("--backend", required=True, help=f"{', '.join(BACKENDS)} or {CHUNK_PREFIX}<frames>")
    p.add_argument("--threads", required=True)
    p.add_argument("--f0", choices=("pm", "rmvpe"), default="rmvpe")
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--workdir", required=True)
    p.add_argument("--file", action="store_true", help="file-to-file conversion (convert_file)")
    p.add_argument("--out", help="save the converted audio here (.npy; in-memory rows)")
    p.add_argument("--size", choices=("full", "small"), default="full", help="small: tests only (v1 small files)")
    p.add_argument("--count", action="store_true", help="no timing: the arithmetic per stage (GFLOP, bench.flops)")
    p.add_argument("--no-peak", action="store_true", help="skip the matrix-multiply peak after the conversion")
    args = p.parse_args()
    provider = describe(args.backend)
    load_before = os.getloadavg()[0]

    import svc_core  # noqa: F401 - first: its import sets the OpenMP wait policy before torch
    import numpy as np
    import torch
    from svc_core.threads import use_threads
    from svc_core.timing import peak_rss_mb

    from .models import clip, clip_file
    from .one import cpu_seconds, record_stage_cpu, wait_policy
    from .rvc_models import build_rvc

    threads = use_threads(args.threads).count
    torch.set_num_interop_threads(1)
    paths = build_rvc(args.workdir, size=args.size, version="v2" if args.size == "full" else "v1",
                      **({} if args.size == "full" else {"index_rows": 2000}))
    dst = None
    if args.file:
        source = clip_file(args.workdir, args.seconds)
        dst = os.path.join(args.workdir, f"out_rvc_{args.backend}.wav")
    else:
        source = clip(args.seconds)
    for module in WARM_IMPORTS:
        importlib.import_module(module)
    if args.count:
        from .flops import count_stage_flops

        run = (lambda: run_reference(paths, args.f0, source)) if args.backend == "rvc-reference" else \
            (lambda: run_engine(args.backend, paths, args.f0, source, dst))
        print(json.dumps({"backend": args.backend, "f0": args.f0, "seconds": args.seconds,
                          "gflop": count_stage_flops(run)}))
        return
    stage_cpu = record_stage_cpu()
    from .rss_stages import RssByStage

    rss = RssByStage().start()
    cpu_start = cpu_seconds()
    if args.backend == "rvc-reference":
        if args.file:
            from svc_core import audio as audio_io

            source = audio_io.load_audio(source)  # RVC decodes the whole file first
        out, times, load, frames = run_reference(paths, args.f0, source)
    else:
        out, times, load, frames = run_engine(args.backend, paths, args.f0, source, dst, threads)
    cpu_end = cpu_seconds()
    rss_by_stage = rss.stop()
    result = {
        "backend": args.backend, "provider": provider, "threads": threads, "f0": args.f0,
        "audio_seconds": args.seconds, "io": "file" if args.file else "memory", "load": load,
        "stages": dict(times.seconds), "convert": times.total, "rtf": times.rtf, "end_to_end": load + times.total,
        "peak_rss_mb": peak_rss_mb(), "loadavg_before": load_before, "cpu_seconds": cpu_end - cpu_start,
        "stage_cpu_seconds": dict(stage_cpu), "wait_policy": wait_policy(), "rss_by_stage": rss_by_stage,
        "decoder_calls": len(frames) or None, "decoded_frames": int(sum(frames)) or None, "size": args.size,
    }
    if out is not None:
        result["output_samples"] = int(len(out))
        if args.out:
            np.save(args.out, np.asarray(out, dtype=np.float32))
            result["output"] = args.out
    if not args.no_peak:
        from .flops import gemm_peak

        result["gemm_peak"] = {"fp32": gemm_peak(threads)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
