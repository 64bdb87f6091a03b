"""`python -m bench`: convert a 40 s clip (and a long clip for memory) with full-size random-weight models in the
upstream layout, per backend, f0 predictor and thread count; print per-stage seconds, end-to-end real-time
factor and peak RSS beside the torch-eager baseline of the same run; write bench/README.md's table.

    python -m bench [--seconds 40] [--long-seconds 600] [--threads 1,2] [--f0 pm]
                    [--backends torch,onnx,onnx-enc,onnx-int8]  (also: torch-bf16, torch-bf16-int8)
                    [--workdir /tmp/svc-bench] [--readme bench/README.md]

Every configuration runs in its own process (clean peak RSS). The 1-minute load average is printed before
each run; above 0.5 per core the machine is not idle and the figures are marked.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

STAGES = ("load", "resample", "f0", "encoder", "synthesizer")


def _run(backend: str, threads: int, f0: str, seconds: float, workdir: str, rerun: bool) -> dict:
    """One fresh process; the long (memory) run, rerun=False, converts a WAV file into another as the CLI does."""
    cmd = [sys.executable, "-m", "bench.one", "--backend", backend, "--threads", str(threads), "--f0", f0,
           "--seconds", str(seconds), "--workdir", workdir] + (["--rerun"] if rerun else ["--file"])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _busy_percent(window: float = 3.0) -> float:
    """System-wide CPU use over `window` seconds while this driver sleeps: the idle check before a run."""
    import psutil

    return float(psutil.cpu_percent(interval=window))


def _cell(value: float, base: float, fmt: str = "{:.2f}") -> str:
    return fmt.format(value) + (f" ({value / base:.2f}x)" if base else "")


def machine() -> str:
    import onnxruntime
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {len(os.sched_getaffinity(0))} CPUs available, {mem:.1f} GiB RAM; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}")


def table(rows: list[dict], base: dict) -> list[str]:
    lines = ["| backend | f0 | threads | audio s | " + " | ".join(STAGES) + " | end-to-end s | RTF | peak RSS MB "
             "| re-run, transpose +2 (cached f0/units) | CPU busy before % |",
             "|" + "---|" * (len(STAGES) + 9)]
    for r in rows:
        b = base.get((r["f0"], r["threads"], r["audio_seconds"]))
        stages = {"load": r["load"], **r["stages"]}
        cells = [_cell(stages.get(s, 0.0), (b and ({"load": b["load"], **b["stages"]}).get(s, 0.0)) or 0.0)
                 for s in STAGES]
        rerun = f"{r['rerun_transpose']:.2f}" if "rerun_transpose" in r else "-"
        seconds = f"{r['audio_seconds']:.0f}" + (" (file)" if r.get("io") == "file" else "")
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | {seconds} | " + " | ".join(cells)
                     + f" | {_cell(r['end_to_end'], b['end_to_end'] if b else 0)} | {_cell(r['rtf'], b['rtf'] if b else 0, '{:.3f}')}"
                     + f" | {_cell(r['peak_rss_mb'], b['peak_rss_mb'] if b else 0, '{:.0f}')} | {rerun} | {r.get('cpu_busy_before', float('nan')):.0f} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--long-seconds", type=float, default=600.0, help="memory run (0 = skip)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--f0", default="pm", help="comma-separated f0 predictors")
    p.add_argument("--backends", default="torch,onnx,onnx-enc,onnx-int8")
    p.add_argument("--long-backends", default="", help="backends of the memory run (default: --backends)")
    p.add_argument("--workdir", default="/tmp/svc-bench")
    p.add_argument("--readme", default=str(Path(__file__).resolve().parent / "README.md"))
    args = p.parse_args()

    from .models import build

    print("building / reusing full-size models in", args.workdir, flush=True)
    build(args.workdir)
    rows: list[dict] = []
    plan = [(b, int(t), f, args.seconds, True) for f in args.f0.split(",") for t in args.threads.split(",")
            for b in args.backends.split(",")]
    if args.long_seconds:
        top = max(int(t) for t in args.threads.split(","))
        plan += [(b, top, args.f0.split(",")[0], args.long_seconds, False)
                 for b in (args.long_backends or args.backends).split(",")]
    for backend, threads, f0, seconds, rerun in plan:
        load, busy = os.getloadavg()[0], _busy_percent()
        note = "" if busy <= 10 else "  (machine NOT idle)"
        print(f"-> {backend} threads={threads} f0={f0} audio={seconds:.0f}s  CPU busy {busy:.0f}% over 3 s "
              f"(load avg {load:.2f}, includes the previous run){note}", flush=True)
        r = _run(backend, threads, f0, seconds, args.workdir, rerun)
        r["cpu_busy_before"] = busy
        rows.append(r)
        print(f"   end-to-end {r['end_to_end']:.2f} s, RTF {r['rtf']:.3f}, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"stages {json.dumps({k: round(v, 2) for k, v in r['stages'].items()})}", flush=True)
    base = {(r["f0"], r["threads"], r["audio_seconds"]): r for r in rows if r["backend"] == "torch"}
    lines = table(rows, base)
    print("\n".join(lines))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    Path(args.readme).write_text(README.format(
        stamp=stamp, machine=machine(), command=" ".join(["python -m bench"] + sys.argv[1:]),
        table="\n".join(lines)), encoding="utf-8")
    print("wrote", args.readme)


README = """# Benchmarks

`python -m bench` converts a sung test clip with **full-size random-weight models in the upstream layout**
(vec768l12 so-vits-svc 4.1 synthesizer, 44.1 kHz, and a ContentVec-legacy-layout encoder of the real size),
once per backend / f0 predictor / thread count, each in a fresh process, and writes the table below. Figures in
parentheses are the ratio to the torch-eager baseline (`Svc`) with the same f0 predictor, threads and input,
measured in the same run (below 1 is faster / smaller). "load" is loading the synthesizer + encoder (ONNX:
creating the ONNX Runtime session); the synthesizer column includes the NSF-HiFiGAN vocoder (no diffusion
model here). The long run converts a WAV file into another block by block (`convert_file`, as the CLI does:
"(file)" in the audio column; its input is 40 s blocks of the test clip, each followed by the clip's 0.6 s gap and
at a slightly different gain, so its pieces are the 40 s run's; like the CLI it keeps no per-input feature cache,
which would hold 92 MB of vec768 units for 600 s); the 40 s runs
convert an in-memory clip. The re-run column converts the same input again with another transpose: f0 and the content
encoder come from the per-input cache. The last column is the system-wide CPU use over the 3 s before
the run (the idle check; the 1-minute load average is useless here because it still contains the previous run).

Backends: `torch` (Svc, everything in torch eager), `onnx` (OnnxSvc: synthesizer on ONNX Runtime, encoder in
torch), `onnx-enc` (the content encoder exported to ONNX too), `onnx-int8` (its dynamic-int8 file), and the opt-in
reduced-precision rows, which are outside the 1e-3 parity: `torch-bf16` (torch with the vocoder in bfloat16,
`vocoder_precision="bf16"`) and `torch-bf16-int8` (that plus the int8 ONNX encoder). Not run by the test suite. Options: `--seconds 40 --long-seconds 600 --threads 1,2 --f0 pm,rmvpe
--backends torch,onnx,onnx-enc,onnx-int8 --workdir /tmp/svc-bench`.

## Last run

{stamp}, `{command}`

Machine: {machine}

{table}
"""

if __name__ == "__main__":
    main()
