"""Decode speed and peak memory of the mel vocoder (openvpi NSF-HiFiGAN, full-size layout: upsample_initial_channel
512, random weights built in memory) for several chunk sizes against one whole call.

`python -m bench.vocoder_chunks --threads 2 --frames 1000 [--chunks 0,64,128,256,512] [--repeats 2]
[--interleave ROUNDS]`: every chunk size runs in a fresh process (so its peak RSS is its own) and prints one JSON
line: chunk_frames (0 = one call), threads, frames, best wall seconds and CPU-seconds (the latter is less sensitive to other processes), real-time
factor (audio seconds / wall seconds), peak RSS in MiB, the 1-minute load average. Wall times are only meaningful
on an otherwise idle box; on a busy one, --interleave times every chunk size in turn in one process (the first
size in --chunks is the reference of `vs_whole`).
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


def _setup(threads: int, frames: int):
    import svc_core  # noqa: F401 - the engine's thread/wait policy before torch
    import torch

    from svc_core.models.weight_norm import fold_weight_norm
    from svc_core.vocoders.nsf_hifigan import NsfHifiGAN, VocoderConfig

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    vocoder = NsfHifiGAN(VocoderConfig()).eval()
    fold_weight_norm(vocoder.generator)
    gen = torch.Generator().manual_seed(SEED)
    mel = torch.randn(1, frames, vocoder.n_mels, generator=gen) - 5.0
    f0 = torch.linspace(*F0_HZ, frames)[None]
    return vocoder, mel, f0


def _time(vocoder, mel, f0, chunk: int) -> tuple[float, float, int]:
    """(wall seconds, CPU-seconds, samples) of one decode."""
    from svc_core.noise import TorchNoise

    start, cpu = time.perf_counter(), time.process_time()
    audio = vocoder.decode(mel, f0, noise=TorchNoise.seeded(SEED), chunk_frames=chunk)
    return time.perf_counter() - start, time.process_time() - cpu, audio.shape[-1]


def run_one(chunk: int, threads: int, frames: int, repeats: int) -> dict:
    """One chunk size in this process: best of `repeats`, and this process's peak RSS."""
    vocoder, mel, f0 = _setup(threads, frames)
    runs = [_time(vocoder, mel, f0, chunk) for _ in range(repeats)]
    seconds = runs[0][2] / vocoder.sample_rate
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"chunk_frames": chunk, "threads": threads, "frames": frames, "audio_s": round(seconds, 2),
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rtf": round(seconds / wall, 3),
            "peak_rss_mib": round(peak_mib), "load1": round(os.getloadavg()[0], 2)}


def run_interleaved(chunks: list[int], threads: int, frames: int, rounds: int) -> list[dict]:
    """Every chunk size in turn, `rounds` times, in one process: on a busy machine the best time of each is
    compared under the same conditions (no peak RSS here: see run_one)."""
    vocoder, mel, f0 = _setup(threads, frames)
    best: dict[int, list[float]] = {c: [float("inf"), float("inf")] for c in chunks}
    for _ in range(rounds):
        for chunk in chunks:
            wall, cpu, samples = _time(vocoder, mel, f0, chunk)
            best[chunk] = [min(best[chunk][0], wall), min(best[chunk][1], cpu)]
    seconds = samples / vocoder.sample_rate
    return [{"chunk_frames": c, "threads": threads, "frames": frames, "audio_s": round(seconds, 2),
             "wall_s": round(w, 2), "cpu_s": round(p, 2), "rtf": round(seconds / w, 3),
             "vs_whole": round(w / best[chunks[0]][0], 3), "load1": round(os.getloadavg()[0], 2)}
            for c, (w, p) in best.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--chunks", default="0,64,128,256,512")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                    help="time every chunk size in turn in one process, ROUNDS times (busy machines)")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process: one chunk size
    args = ap.parse_args()
    if args.interleave:
        chunks = [int(c) for c in args.chunks.split(",")]
        for row in run_interleaved(chunks, args.threads, args.frames, args.interleave):
            print(json.dumps(row), flush=True)
        return
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
