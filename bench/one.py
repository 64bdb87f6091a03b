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
--k-step K (K > 0): shallow diffusion from step K on top of the so-vits output, with the full-size diffusion model
(upstream's template: 20 layers, 512 channels) and the full-size openvpi NSF-HiFiGAN mel vocoder of
bench.models.build_diffusion, dpm-solver++ speedup 10 (stages "diffusion" and "mel vocoder"). Then torch-upstream
is upstream's way for these stages too (upstream_diffusion: the denoiser's plain forward at every step, each slice
decoded whole), torch-bf16 puts both vocoders in bfloat16 and torch-bf16-diff the denoiser as well
(`diffusion_precision="bf16"`). Every row records the CPU-seconds of each stage (stage_cpu_seconds).
--count: no timing; the conversion's arithmetic per stage (GFLOP, bench.flops), the same for every thread count
(onnx*: counted on torch following the ONNX backend's decoding plan, 512-frame chunks). Every timed row also
measures the float32 (and bf16) matrix-multiply peak at its thread count."""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Callable

BACKENDS = {"torch": "torch eager", "torch-bf16": "torch eager, vocoder bf16",
            "torch-bf16-all": "torch eager, vocoder and encoder bf16",
            "torch-bf16-int8": "torch eager, vocoder bf16; encoder ONNX int8", "onnx": "; encoder torch",
            "onnx-enc": "; encoder ONNX float", "onnx-int8": "; encoder ONNX int8",
            "onnx-int8voc": "; encoder ONNX int8, vocoder int8",
            "torch-upstream": "torch eager, upstream's procedure (whole-slice decode incl. padding)",
            "torch-bf16-diff": "torch eager, vocoders and denoiser bf16"}
DIFFUSION_METHOD, DIFFUSION_SPEEDUP = "dpm-solver++", 10  # upstream's template infer section (issue #21's rows)
DIFFUSION_NAMES = {"torch": "torch eager (cached conditioner, 256-frame mel vocoder chunks)",
                   "torch-upstream": "torch eager, upstream's way (denoiser recomputes the conditioner every call, "
                                     "each slice decoded whole incl. padding)",
                   "torch-bf16": "torch eager, vocoders bf16 (denoiser fp32)",
                   "torch-bf16-diff": "torch eager, vocoders and denoiser bf16"}


def upstream_diffusion(stage) -> Callable[[], None]:
    """Make a DiffusionStage work as upstream's code does (bench only; same samples up to float rounding): the
    denoiser's plain forward at every sampler step (each call recomputes the 20 conditioner projections, which
    WaveNet.cached computes once per slice) and the mel vocoder decoding each slice whole, padding included, in one
    call (then cut to the frames kept). Returns the function that undoes it."""
    wavenet = stage.model.decoder.denoise_fn
    hop = int(stage.vocoder.hop_size)

    def plain(cond, dtype=None):
        return lambda x, t: wavenet(x, t, cond)

    def whole(mel, f0, noise, chunk_frames, span, dtype=None, _vocode=stage.vocode):
        audio = _vocode(mel, f0, noise, 0, None, dtype)
        return audio[span[0] * hop: span[1] * hop] if span else audio

    wavenet.cached = plain
    stage.vocode = whole

    def undo() -> None:
        del wavenet.cached, stage.vocode

    return undo


def upstream_style(svc_class: type) -> type:
    """An Svc subclass that decodes each slice as upstream does: whole, padding included (same samples kept), with
    upstream's whole-matrix attention."""

    class UpstreamStyle(svc_class):
        def _synthesize(self, c, f0, uv, g, vol, opts, span=None, times=None):
            from svc_core.models.attentions import whole_matrix_attention  # upstream's attention too

            with whole_matrix_attention():
                out = super()._synthesize(c, f0, uv, g, vol, opts, span=None, times=times)
            return out[span[0] * self.hop_length: span[1] * self.hop_length] if span else out

    return UpstreamStyle


def cpu_seconds() -> float:
    """CPU-seconds used by this process so far (all its threads, user + system)."""
    t = os.times()
    return t.user + t.system


def record_stage_cpu() -> dict[str, float]:
    """Also record the CPU-seconds (this process, all threads) of every StageTimes stage / part, into the returned
    dict (bench only: wraps StageTimes.stage and .part as bench.flops does). On a busy machine wall seconds swing
    with the other processes' load; a stage's CPU-seconds move much less."""
    from contextlib import contextmanager

    from svc_core import timing

    spent: dict[str, float] = {}
    stage, part = timing.StageTimes.stage, timing.StageTimes.part

    @contextmanager
    def cpu_stage(self, name):
        before = cpu_seconds()
        with stage(self, name):
            yield
        spent[name] = spent.get(name, 0.0) + cpu_seconds() - before

    @contextmanager
    def cpu_part(self, name, of):
        before = cpu_seconds()
        with part(self, name, of):
            yield
        used = cpu_seconds() - before
        spent[of] = spent.get(of, 0.0) - used
        spent[name] = spent.get(name, 0.0) + used

    timing.StageTimes.stage, timing.StageTimes.part = cpu_stage, cpu_part  # type: ignore[method-assign]
    return spent


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
    p.add_argument("--k-step", type=int, default=0, help="shallow diffusion from this step with the full-size "
                   "diffusion model + mel vocoder (dpm-solver++, speedup 10); 0 = no diffusion")
    args = p.parse_args()
    load_before = os.getloadavg()[0]

    import svc_core  # noqa: F401 - first: its import sets the OpenMP wait policy (svc_core.threads) before torch
    import torch
    from svc_core.threads import use_threads

    args.threads = use_threads(args.threads).count  # a count, or the one "auto" picks from the load now
    torch.set_num_interop_threads(1)
    from svc_core.timing import peak_rss_mb

    from .models import build, clip, clip_file

    paths = build(args.workdir, variant=args.model, onnx=args.backend.startswith("onnx"))
    size = "" if args.model == "full" else f"; upstream --{args.model} model"
    if args.file:
        src = clip_file(args.workdir, args.seconds)
    else:
        wav, sr = clip(args.seconds)
    options = {"vocoder_precision": "bf16" if args.backend.startswith("torch-bf16")
               else "int8" if args.backend == "onnx-int8voc" else "fp32"}
    diffusion: dict = {}
    if args.k_step:
        from .models import build_diffusion

        dpaths = build_diffusion(args.workdir)
        diffusion = {"diffusion_model_path": dpaths["diffusion_model"],
                     "diffusion_config_path": dpaths["diffusion_config"], "vocoder_path": dpaths["mel_vocoder"]}
        options.update(shallow_diffusion=True, k_step=args.k_step, diffusion_method=DIFFUSION_METHOD,
                       diffusion_speedup=DIFFUSION_SPEEDUP)
        if args.backend == "torch-bf16-diff":
            options["diffusion_precision"] = "bf16"
    if args.backend == "torch-upstream":
        options["decoder_chunk_frames"] = 0
    if args.backend == "torch-bf16-all":
        options["encoder_precision"] = "bf16"
    if args.count:
        if diffusion:
            raise SystemExit("--count with --k-step: not implemented (bench/notes.md counts the denoiser per call)")
        count(args.backend, paths, options,
              lambda svc, opts: svc.slice_inference(wav, sr, 0, f0_predictor=args.f0, **opts))
        return
    stage_cpu = record_stage_cpu()
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
                        f0_weights={"rmvpe": str(paths["rmvpe"])}, **diffusion)
        if diffusion and args.backend == "torch-upstream":
            upstream_diffusion(svc.diffusion)
        provider = (DIFFUSION_NAMES if diffusion else BACKENDS)[args.backend] + size
    else:
        from svc_core.onnx import OnnxSvc

        svc = OnnxSvc(paths["onnx"], encoder_path=str(paths["encoder"]), device="auto", threads=args.threads,
                      encoder=encoder, f0_weights={"rmvpe": str(paths["rmvpe_onnx"])}, **diffusion)
        provider = svc.session_info.describe() + BACKENDS[args.backend] + size + (
            f"; diffusion {type(svc.diffusion).__name__}" if diffusion else "")
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
        "convert_cpu_seconds": cpu_end - cpu_convert, "wait_policy": wait_policy(), "k_step": args.k_step,
        "stage_cpu_seconds": dict(stage_cpu),
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
