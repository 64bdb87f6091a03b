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
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from svc_core.diffusion.noise import TorchNoise
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


def bench(models: dict, frames: int, threads: int, reps: int) -> dict:
    torch.set_num_threads(threads)
    wavenet, vocoder = models["wavenet"], models["vocoder"]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, N_MELS, frames, generator=gen)
    cond = torch.randn(1, N_HIDDEN, frames, generator=gen)
    t = torch.tensor([55.5])
    out: dict = {"frames": frames, "threads": threads, "load_before": _uptime()}
    with torch.inference_mode():
        out["torch_eager"] = _time(lambda: wavenet(x, t, cond), reps)
        eps_fn = wavenet.cached(cond)
        out["torch_cached"] = _time(lambda: eps_fn(x, t), reps)
        for condition, path in models["paths"].items():
            session, _ = make_session(path, "cpu", threads)
            den = OnnxDenoiser(session, read_manifest(path), *stacked_projection(wavenet))
            fn = den.cached(cond)
            out[f"ort_{condition}"] = _time(lambda: fn(x, t), reps)
            if condition == "projected":
                w, b = stacked_projection(wavenet)
                out["projection_once"] = _time(lambda: project(cond, w, b), reps)
            del session, den, fn
        mel = -6.0 + 2.0 * torch.randn(1, frames, N_MELS, generator=gen)
        f0 = torch.full((1, frames), 220.0)
        out["vocoder_torch"] = _time(lambda: vocoder.decode(mel, f0, TorchNoise.seeded(0), TORCH_CHUNK), reps)
        session, _ = make_session(models["voc"], "cpu", threads)
        torch_gen = vocoder.generator
        vocoder.generator = OnnxMelGenerator(session, torch_gen.m_source, torch_gen.upp, torch_gen.context_frames())
        try:
            for chunk in ORT_CHUNKS:
                out[f"vocoder_ort_{chunk}"] = _time(lambda: vocoder.decode(mel, f0, TorchNoise.seeded(0), chunk),
                                                    reps)
        finally:
            vocoder.generator = torch_gen
    out["load_after"] = _uptime()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[516, 2584])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = build(Path(tmp))
        for frames in args.frames:
            for threads in args.threads:
                row = bench(models, frames, threads, args.reps)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
