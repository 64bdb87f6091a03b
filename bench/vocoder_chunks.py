"""Decode speed and peak memory of the mel vocoder (openvpi NSF-HiFiGAN, full-size layout: upsample_initial_channel
512, random weights built in memory) for several chunk sizes against one whole call.

`python -m bench.vocoder_chunks --threads 2 --frames 1000 [--chunks 0,64,128,256,512] [--repeats 2]`: every chunk
size runs in a fresh process (so its peak RSS is its own) and prints one JSON line: chunk_frames (0 = one call),
threads, frames, best wall seconds and CPU-seconds (the latter is less sensitive to other processes), real-time
factor (audio seconds / wall seconds), peak RSS in MiB, the 1-minute load average. Wall times are only meaningful
on an otherwise idle box.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SEED = 0  # weights and inputs
F0_HZ = (150.0, 450.0)  # f0 sweep of the synthetic input


def run_one(chunk: int, threads: int, frames: int, repeats: int) -> dict:
    import svc_core  # noqa: F401 - the engine's thread/wait policy before torch
    import torch

    from svc_core.diffusion.noise import TorchNoise
    from svc_core.models.weight_norm import fold_weight_norm
    from svc_core.vocoders.nsf_hifigan import NsfHifiGAN, VocoderConfig

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    vocoder = NsfHifiGAN(VocoderConfig()).eval()
    fold_weight_norm(vocoder.generator)
    gen = torch.Generator().manual_seed(SEED)
    mel = torch.randn(1, frames, vocoder.n_mels, generator=gen) - 5.0
    f0 = torch.linspace(*F0_HZ, frames)[None]
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        audio = vocoder.decode(mel, f0, noise=TorchNoise.seeded(SEED), chunk_frames=chunk)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    seconds = audio.shape[-1] / vocoder.sample_rate
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"chunk_frames": chunk, "threads": threads, "frames": frames, "audio_s": round(seconds, 2),
            "wall_s": round(min(walls), 2), "cpu_s": round(min(cpus), 2), "rtf": round(seconds / min(walls), 3),
            "peak_rss_mib": round(peak_mib), "load1": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--chunks", default="0,64,128,256,512")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process: one chunk size
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.threads, args.frames, args.repeats)))
        return
    for chunk in (int(c) for c in args.chunks.split(",")):
        out = subprocess.run([sys.executable, "-m", "bench.vocoder_chunks", "--one", str(chunk), "--threads",
                              str(args.threads), "--frames", str(args.frames), "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
