"""Per-call speed of the shallow-diffusion networks, torch vs ONNX Runtime, at full size with random weights.

    python -m bench.onnx_diffusion [--frames 516 2584] [--threads 1 2] [--reps 3] [--json out.json]

Denoiser (WaveNet 20 layers x 512 channels, n_hidden 256, 128 mels), seconds per call: torch eager `forward`,
torch `cached(cond)` (conditioner projections once per run), ORT with the `cond` graph, ORT with the `projected`
graph (+ the one-off projection per run, reported apart). Mel vocoder (NSF-HiFiGAN, upsample_initial_channel 512):
seconds per decode of the whole input, torch chunked (256 frames, Svc's default) vs ORT chunked (256 and 512,
OnnxSvc's default), excitation included in both. Reports `uptime` before and after: the machine may be shared.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from svc_core.noise import TorchNoise
from svc_core.diffusion.wavenet import WaveNet
from svc_core.models.weight_norm import fold_weight_norm
from svc_core.onnx.diffusion_export import export_denoiser_module, export_vocoder_module, project, stacked_projection
from svc_core.onnx.diffusion_stage import OnnxDenoiser, OnnxMelGenerator
from svc_core.onnx.export import read_manifest
from svc_core.onnx.runtime import make_session
from svc_core.vocoders.nsf_hifigan import NsfHifiGAN, VocoderConfig

N_LAYERS, N_CHANS, N_HIDDEN, N_MELS = 20, 512, 256, 128  # upstream's diffusion template
TORCH_CHUNK, ORT_CHUNKS = 256, (256, 512)  # vocoder frames per chunk (Svc / OnnxSvc defaults)


def _uptime() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _time(fn, reps: int) -> dict:
    fn()  # warm-up: first-shape kernel selection / arena growth
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return {"min": min(runs), "median": statistics.median(runs)}


def build(folder: Path) -> dict:
    torch.manual_seed(0)
    wavenet = WaveNet(N_MELS, N_LAYERS, N_CHANS, N_HIDDEN).eval()
    torch.nn.init.normal_(wavenet.output_projection.weight, std=0.02)
    vocoder = NsfHifiGAN(VocoderConfig()).eval()
    fold_weight_norm(vocoder.generator)
    paths = {c: folder / f"den-{c}.onnx" for c in ("cond", "projected")}
    for condition, path in paths.items():
        export_denoiser_module(wavenet, path, {"source": "random"}, condition)
    export_vocoder_module(vocoder, folder / "voc.onnx", {"source": "random"})
    return {"wavenet": wavenet, "vocoder": vocoder, "paths": paths, "voc": folder / "voc.onnx"}


def variants(models: dict, frames: int, threads: int) -> tuple[dict, list]:
    """name -> zero-argument callable doing one measured unit of work; plus what must stay alive."""
    torch.set_num_threads(threads)
    wavenet, vocoder = models["wavenet"], models["vocoder"]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, N_MELS, frames, generator=gen)
    cond = torch.randn(1, N_HIDDEN, frames, generator=gen)
    t = torch.tensor([55.5])
    fns: dict = {"torch_eager": lambda: wavenet(x, t, cond)}
    eps_fn = wavenet.cached(cond)
    fns["torch_cached"] = lambda: eps_fn(x, t)
    keep = []
    for condition, path in models["paths"].items():
        session, _ = make_session(path, "cpu", threads)
        den = OnnxDenoiser(session, read_manifest(path), *stacked_projection(wavenet))
        fns[f"ort_{condition}"] = (lambda fn: lambda: fn(x, t))(den.cached(cond))
        keep.append(den)
    w, b = stacked_projection(wavenet)
    fns["projection_once"] = lambda: project(cond, w, b)
    mel = -6.0 + 2.0 * torch.randn(1, frames, N_MELS, generator=gen)
    f0 = torch.full((1, frames), 220.0)
    fns["vocoder_torch"] = lambda: vocoder.decode(mel, f0, TorchNoise.seeded(0), TORCH_CHUNK)
    session, _ = make_session(models["voc"], "cpu", threads)
    torch_gen = vocoder.generator
    ort_voc = copy.copy(vocoder)  # shares the torch modules, its own generator attribute
    ort_voc._modules = dict(vocoder._modules)
    ort_voc.generator = OnnxMelGenerator(session, torch_gen.m_source, torch_gen.upp, torch_gen.context_frames())
    for chunk in ORT_CHUNKS:
        fns[f"vocoder_ort_{chunk}"] = (lambda c: lambda: ort_voc.decode(mel, f0, TorchNoise.seeded(0), c))(chunk)
    return fns, keep + [ort_voc]


def bench(models: dict, frames: int, threads: int, reps: int, interleave: bool = False,
          only: list | None = None) -> dict:
    """Seconds per unit (min, median). interleave: one call of each variant per round (load drift hits all)."""
    fns, _keep = variants(models, frames, threads)
    if only:
        fns = {k: v for k, v in fns.items() if k in only}
    out: dict = {"frames": frames, "threads": threads, "interleaved": interleave, "load_before": _uptime()}
    with torch.inference_mode():
        if not interleave:
            for name, fn in fns.items():
                out[name] = _time(fn, reps)
        else:
            runs: dict = {name: [] for name in fns}
            for fn in fns.values():
                fn()  # warm-up
            for _ in range(reps):
                for name, fn in fns.items():
                    start = time.perf_counter()
                    fn()
                    runs[name].append(time.perf_counter() - start)
            for name, r in runs.items():
                out[name] = {"min": min(r), "median": statistics.median(r)}
    out["load_after"] = _uptime()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[516, 2584])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--interleave", action="store_true", help="one call of each variant per round")
    ap.add_argument("--only", nargs="+", default=None, help="variant names to run (default: all)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = build(Path(tmp))
        for frames in args.frames:
            for threads in args.threads:
                row = bench(models, frames, threads, args.reps, args.interleave, args.only)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
