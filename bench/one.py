"""One measurement in a fresh process (so peak RSS is this configuration's):
`python -m bench.one --backend BACKEND --threads N|auto --f0 pm --seconds 40 --workdir DIR [--file | --rerun | --count]
[--no-peak]` -> one JSON line (with the CPU-seconds of loading + converting and the OpenMP wait policy in force:
`import svc_core` comes before torch, so the engine's default policy applies unless the environment sets one).
--file: the input is a WAV file converted into another with `convert_file` (block by block, no per-input feature
cache), as the CLI does; otherwise an in-memory clip with `slice_inference`.
Backends: torch (Svc, eager); onnx: synthesizer on ONNX Runtime, encoder in torch; onnx-enc: the encoder on ONNX
Runtime too (float); onnx-int8: the encoder's int8 file; onnx-int8voc: that plus the opt-in int8 vocoder
(svc_core.onnx.vocoder_int8, not within the 1e-3 parity);
torch-bf16: torch with the vocoder in bfloat16 (opt-in, not within the 1e-3 parity: svc_core.precision);
torch-bf16-int8: that plus the int8 ONNX encoder; torch-bf16-all: torch with the vocoder and the content encoder in
bfloat16 (`encoder_precision="bf16"` too); torch-upstream: torch eager doing what upstream so-vits-svc 4.1 does
(each slice decoded whole in one call, its 0.5 s padding included: a same-machine estimate of upstream's cost,
since the model math is upstream's (parity tests)).
--count: no timing; the conversion's arithmetic per stage (GFLOP, bench.flops), the same for every thread count
(onnx*: counted on torch following the ONNX backend's decoding plan, 512-frame chunks). Every timed row also
measures the float32 (and bf16) matrix-multiply peak at its thread count."""
from __future__ import annotations

import argparse
import json
import os
import time

BACKENDS = {"torch": "torch eager", "torch-bf16": "torch eager, vocoder bf16",
            "torch-bf16-all": "torch eager, vocoder and encoder bf16",
            "torch-bf16-int8": "torch eager, vocoder bf16; encoder ONNX int8", "onnx": "; encoder torch",
            "onnx-enc": "; encoder ONNX float", "onnx-int8": "; encoder ONNX int8",
            "onnx-int8voc": "; encoder ONNX int8, vocoder int8",
            "torch-upstream": "torch eager, upstream's procedure (whole-slice decode incl. padding)"}


def upstream_style(svc_class: type) -> type:
    """An Svc subclass that decodes each slice as upstream does: whole, padding included (same samples kept)."""

    class UpstreamStyle(svc_class):
        def _synthesize(self, c, f0, uv, g, vol, opts, span=None, times=None):
            out = super()._synthesize(c, f0, uv, g, vol, opts, span=None, times=times)
            return out[span[0] * self.hop_length: span[1] * self.hop_length] if span else out

    return UpstreamStyle


def cpu_seconds() -> float:
    """CPU-seconds used by this process so far (all its threads, user + system)."""
    t = os.times()
    return t.user + t.system


def wait_policy() -> str:
    """How this process's OpenMP threads wait: OMP_WAIT_POLICY / GOMP_SPINCOUNT as libgomp read them."""
    policy, spin = os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT")
    return "; ".join(f"{k}={v}" for k, v in (("OMP_WAIT_POLICY", policy), ("GOMP_SPINCOUNT", spin)) if v) \
        or "libgomp default (spin)"


def count(backend: str, paths: dict, options: dict, convert) -> None:
    """Print the arithmetic per stage of `convert(svc, options)` (GFLOP, bench.flops) with the backend's plan, on
    torch float32: ONNX backends decode 512-frame chunks of any length; the upstream procedure whole slices."""
    from svc_core import Svc

    from .flops import count_stage_flops

    svc_class = upstream_style(Svc) if backend == "torch-upstream" else Svc
    if backend.startswith("onnx"):
        from svc_core.models import nsf_hifigan
        from svc_core.onnx import OnnxSvc

        nsf_hifigan.SHAPE_BUCKET = 1  # ONNX Runtime decodes chunks of any length
        options = dict(options, decoder_chunk_frames=OnnxSvc.DECODER_CHUNK_FRAMES)
    svc = svc_class(paths["model"], paths["config"], encoder_path=str(paths["encoder"]))
    print(json.dumps({"backend": backend, "gflop": count_stage_flops(lambda: convert(svc, options))}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=tuple(BACKENDS), required=True)
    p.add_argument("--threads", required=True, help="a count, or auto (svc_core.threads chooses from the load)")
    p.add_argument("--f0", default="pm")
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", default="full", help="synthesizer size: full or tiny (bench.models.VARIANTS)")
    p.add_argument("--rerun", action="store_true", help="also time a second pass with another transpose")
    p.add_argument("--file", action="store_true", help="file-to-file conversion (convert_file)")
    p.add_argument("--count", action="store_true", help="count the arithmetic per stage instead of timing")
    p.add_argument("--no-peak", action="store_true", help="skip the matrix-multiply peak after the conversion")
    args = p.parse_args()
    load_before = os.getloadavg()[0]

    import svc_core  # noqa: F401 - first: its import sets the OpenMP wait policy (svc_core.threads) before torch
    import torch
    from svc_core.threads import use_threads

    args.threads = use_threads(args.threads).count  # a count, or the one "auto" picks from the load now
    torch.set_num_interop_threads(1)
    from svc_core.timing import peak_rss_mb

    from .models import build, clip, clip_file

    paths = build(args.workdir, variant=args.model)
    size = "" if args.model == "full" else f"; upstream --{args.model} model"
    if args.file:
        src = clip_file(args.workdir, args.seconds)
    else:
        wav, sr = clip(args.seconds)
    options = {"vocoder_precision": "bf16" if args.backend.startswith("torch-bf16")
               else "int8" if args.backend == "onnx-int8voc" else "fp32"}
    if args.backend == "torch-upstream":
        options["decoder_chunk_frames"] = 0
    if args.backend == "torch-bf16-all":
        options["encoder_precision"] = "bf16"
    if args.count:
        count(args.backend, paths, options,
              lambda svc, opts: svc.slice_inference(wav, sr, 0, f0_predictor=args.f0, **opts))
        return
    start, cpu_start = time.perf_counter(), cpu_seconds()
    encoder = None
    if args.backend in ("onnx-enc", "onnx-int8", "onnx-int8voc", "torch-bf16-int8"):
        from svc_core.onnx import OnnxEncoder

        encoder = OnnxEncoder(paths["encoder_onnx" if args.backend == "onnx-enc" else "encoder_int8"],
                              threads=args.threads)
    if args.backend.startswith("torch"):
        from svc_core import Svc

        svc_class = upstream_style(Svc) if args.backend == "torch-upstream" else Svc
        svc = svc_class(paths["model"], paths["config"], encoder_path=str(paths["encoder"]), encoder=encoder,
                        f0_weights={"rmvpe": str(paths["rmvpe"])})
        provider = BACKENDS[args.backend] + size
    else:
        from svc_core.onnx import OnnxSvc

        svc = OnnxSvc(paths["onnx"], encoder_path=str(paths["encoder"]), device="auto", threads=args.threads,
                      encoder=encoder, f0_weights={"rmvpe": str(paths["rmvpe_onnx"])})
        provider = svc.session_info.describe() + BACKENDS[args.backend] + size
    load, cpu_convert = time.perf_counter() - start, cpu_seconds()
    if args.file:
        svc.convert_file(src, os.path.join(args.workdir, f"out_{args.backend}.wav"), 0, f0_predictor=args.f0,
                         cache=False, **options)  # as the CLI: one conversion, no per-input feature cache
    else:
        svc.slice_inference(wav, sr, 0, f0_predictor=args.f0, **options)
    times = dict(svc.last_times.seconds)
    cpu_end = cpu_seconds()
    result = {
        "backend": args.backend, "provider": provider, "threads": args.threads, "f0": args.f0,
        "audio_seconds": args.seconds, "io": "file" if args.file else "memory", "load": load, "stages": times, "convert": svc.last_times.total,
        "rtf": svc.last_times.rtf, "end_to_end": load + svc.last_times.total, "peak_rss_mb": peak_rss_mb(),
        "loadavg_before": load_before, "cpu_seconds": cpu_end - cpu_start,  # CPU-seconds of loading + converting
        "convert_cpu_seconds": cpu_end - cpu_convert, "wait_policy": wait_policy(),
    }
    if args.rerun and not args.file:
        svc.slice_inference(wav, sr, 0, f0_predictor=args.f0, transpose=2, **options)
        result["rerun_transpose"] = svc.last_times.total
    if args.no_peak:
        print(json.dumps(result))
        return
    from .flops import gemm_peak

    result["gemm_peak"] = {"fp32": gemm_peak(args.threads)}
    from svc_core.precision import cpu_has_native_bf16

    if cpu_has_native_bf16():
        result["gemm_peak"]["bf16"] = gemm_peak(args.threads, torch.bfloat16)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
