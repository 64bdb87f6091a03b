"""`python -m bench.separation_models`: speed and memory of each community separation family on random weights.

Per family, a random-weight file of the real size in its upstream layout (tests/separation_factories.py):
htdemucs (demucs's .th, 48 channels, depth 4, 5 transformer layers), an MDX-Net .onnx with Inst_HQ_3's
spectrogram (n_fft 6144, 3072 bins x 256 frames; the graph is our TFC-TDF-like U-Net of comparable width, not
UVR's exact graph), and the common vocals BS-RoFormer (512 wide, 12 deep, 62 bands, 8 s windows, 2 overlaps).
Each row runs in a fresh process (clean peak RSS): load through the registry, then separate `--seconds` of a
synthetic stereo song; reported: seconds of compute per minute of audio, load seconds, peak RSS, parameters.

    python -m bench.separation_models [--families demucs,mdx,roformer] [--seconds 30] [--threads 2]
                                      [--size full|small] [--workdir /tmp/svc-bench-separation]

Files are built once into --workdir and reused (full size: 84 MB htdemucs .th, 44 MB .onnx, 639 MB BS-RoFormer
.ckpt: the size of viperx's published one). Run it on an idle machine: the CPU use over the 3 s before each row is
printed and rows above BUSY_LIMIT % are marked. Writes bench/last_separation_models.json (size full).
Expect minutes for the RoFormer row: one 8 s window of the 160 M-parameter network is about 7.6 TFLOP (49,600
band-frame tokens through 24 transformers), and MSST's two overlaps run two windows per 8 s of audio.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

FAMILIES = ("demucs", "mdx", "roformer")
BUSY_LIMIT = 10.0  # % system-wide CPU use over the 3 s before a row above which it is marked "not idle"
JSON_PATH = Path(__file__).resolve().parent / "last_separation_models.json"
RATE = 44100  # Hz
SEED = 21


def model_file(family: str, size: str, workdir: Path) -> Path:
    """Build (once) and return the family's random-weight file of `size` under workdir."""
    from separation_factories import make_demucs_th, make_mdx_onnx, make_roformer, write_yaml

    folder = workdir / size
    folder.mkdir(parents=True, exist_ok=True)
    if family == "demucs":
        path = folder / "htdemucs_random.th"
        if not path.exists():
            make_demucs_th(path, size, seed=SEED)
    elif family == "mdx":
        path = folder / "mdx_inst_hq3_sized.onnx"
        if not path.exists():
            write_yaml(folder / (path.name + ".yaml"), make_mdx_onnx(path, size, seed=SEED))
    elif family == "roformer":
        path = folder / "bs_roformer_vocals.ckpt"
        if not path.exists():
            make_roformer(folder, "bs", size, seed=SEED, name=path.stem)
    else:
        raise SystemExit(f"unknown family {family}; choose from {', '.join(FAMILIES)}")
    return path


def song(seconds: float):
    """A synthetic stereo 'song' float32 [2, N]: chords, a melody and noise (content does not change speed)."""
    import numpy as np

    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(0)
    chords = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    melody = 0.2 * np.sin(2 * np.pi * (440 + 60 * np.sin(2 * np.pi * 0.5 * t)) * t)
    left = chords + melody + 0.02 * rng.standard_normal(t.size)
    return np.stack([left, chords + 0.7 * melody]).astype(np.float32)


def parameters(sep) -> int:
    """Weights in the loaded model (ONNX: elements of its initializers)."""
    if sep.name == "mdx":
        import onnx

        graph = onnx.load(sep.model_path, load_external_data=False).graph
        return int(sum(int(__import__("numpy").prod(init.dims)) for init in graph.initializer))
    module = sep.model if sep.name == "demucs" else sep.net
    return int(sum(p.numel() for p in module.parameters()))


def one(family: str, size: str, seconds: float, threads: int, workdir: Path) -> dict:
    """The child process's row: load, separate, measure."""
    import torch

    from svc_core.separation import get_separator
    from svc_core.timing import peak_rss_mb

    torch.set_num_threads(threads)
    path = model_file(family, size, workdir)
    start = time.perf_counter()
    options = {"threads": threads} if family == "mdx" else {}
    sep = get_separator(family, model_path=path, **options)
    load_s = time.perf_counter() - start
    audio = song(seconds)
    start = time.perf_counter()
    stems = sep.separate(audio, RATE)
    separate_s = time.perf_counter() - start
    assert stems.vocals.shape == audio.shape
    return {"family": family, "size": size, "file": path.name, "file_mb": path.stat().st_size / 2 ** 20,
            "params_m": parameters(sep) / 1e6, "threads": threads, "audio_seconds": seconds, "load_s": load_s,
            "separate_s": separate_s, "seconds_per_minute": separate_s / seconds * 60.0,
            "peak_rss_mb": peak_rss_mb()}


def run_row(family: str, size: str, seconds: float, threads: int, workdir: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.separation_models", "--one", family, "--size", size, "--seconds",
           str(seconds), "--threads", str(threads), "--workdir", str(workdir)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{family} row failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| family | file (random weights) | params (M) | file MB | threads | audio s | load s "
             "| s per minute of audio | peak RSS MB | CPU busy before % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['file']} | {r['params_m']:.1f} | {r['file_mb']:.0f} | {r['threads']} | "
                     f"{r['audio_seconds']:.0f} | {r['load_s']:.1f} | {r['seconds_per_minute']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['cpu_busy_before']:.0f}{' (NOT idle)' if r['not_idle'] else ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--seconds", type=float, default=30.0, help="audio separated per row (s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--workdir", default="/tmp/svc-bench-separation")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one family
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    if args.one:
        print(json.dumps(one(args.one, args.size, args.seconds, args.threads, workdir)))
        return
    import psutil

    rows = []
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        model_file(family, args.size, workdir)  # build outside the timed child
        busy = float(psutil.cpu_percent(interval=3.0))
        print(f"-> {family} ({args.size}) threads={args.threads} audio={args.seconds:.0f}s  CPU busy {busy:.0f}% over "
              f"3 s{'  (machine NOT idle)' if busy > BUSY_LIMIT else ''}", flush=True)
        row = run_row(family, args.size, args.seconds, args.threads, workdir)
        row.update(cpu_busy_before=busy, not_idle=busy > BUSY_LIMIT)
        rows.append(row)
        print(f"   {row['seconds_per_minute']:.1f} s per minute of audio, load {row['load_s']:.1f} s, peak RSS "
              f"{row['peak_rss_mb']:.0f} MB, {row['params_m']:.1f} M parameters", flush=True)
    print()
    print(table(rows))
    if args.size == "full":
        import platform

        JSON_PATH.write_text(json.dumps({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                         "machine": platform.processor() or platform.machine(),
                                         "cpus": os.cpu_count(), "rows": rows}, indent=1) + "\n")
        print(f"\nsaved {JSON_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
